import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { driverRegistry } from '../../drivers/index.js';
import { Broker } from '../../src/broker/broker.js';
import { ProgressMonitor } from '../../src/core/progress.js';
import { SerialHost } from '../../src/serial/host.js';
import { MemoryPorts, settle } from '../helpers/memory-ports.js';
import { serialConfig } from '../helpers/serial-host.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

describe('the serial host across a step of the wall clock', () => {
  it('is not reported stuck after the wall clock steps forward a day between two publications of its counters', async () => {
    const wall = new SteppingWall();
    const log = pino({ level: 'silent' });
    const broker = new Broker({}, { log, clock: wall.clock });
    const host = new SerialHost(serialConfig('devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }'), {
      bus: broker, authorizer: broker, log, opener: new MemoryPorts(), drivers: driverRegistry(), clock: wall.clock, random: () => 0,
    });
    wall.clock.onStep((d) => host.clockStepped(d));
    await host.start();
    await settle();
    const monitor = new ProgressMonitor(30_000, wall.clock, () => wall.mono.now());
    monitor.watch(() => [host.progress]);
    wall.advance(10_000);
    wall.step(DAY);
    for (let s = 0; s < 45; s++) {
      wall.advance(1000); // the counters are published every 60 s
      expect(monitor.stuck()).toEqual([]);
    }
    await host.stop();
    await broker.close();
  });
});
