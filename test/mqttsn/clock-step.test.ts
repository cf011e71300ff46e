/**
 * A step of the wall clock (NTP on a Raspberry Pi without a real-time clock) must not end
 * MQTT-SN sessions early: their deadlines move with it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StampMover } from '../../src/core/clock-steps.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { startSnGateway, type SnHarness } from '../helpers/mqttsn-gateway.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

let h: SnHarness;
let wall: SteppingWall;
beforeEach(async () => {
  wall = new SteppingWall();
  h = await startSnGateway('', { clock: wall.clock });
  wall.clock.onStep((d) => {
    const mover = new StampMover(d);
    h.broker.clockStepped(mover);
    h.gw.clockStepped(mover);
  });
});
afterEach(async () => h.close());

describe('MQTT-SN sessions across a step of the wall clock', () => {
  it('keeps a client that pings within its keepalive connected when the wall clock steps forward a day', async () => {
    const c = await h.client();
    await c.connect('pinger', { duration: 30 }); // lost after 45 s of silence
    wall.advance(10_000);
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    await c.next(MsgType.PINGRESP);
    wall.advance(10_000);
    wall.step(DAY);
    wall.advance(30_000); // the supervision timer, armed for 45 s at the CONNECT, fires 35 s after the PINGREQ
    expect(h.gw.session('pinger')?.state).toBe('active');
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    await c.next(MsgType.PINGRESP);
    wall.advance(40_000);
    expect(h.gw.session('pinger')?.state).toBe('active');
  });

  it('keeps an asleep client asleep until its sleep Duration passed on the monotonic clock, after a step back of a day', async () => {
    const c = await h.client();
    await c.connect('sleeper', { clean: false, duration: 30 });
    c.send({ type: MsgType.DISCONNECT, duration: 60 }); // lost 90 s after this
    await c.next(MsgType.DISCONNECT);
    wall.advance(30_000);
    wall.step(-DAY);
    wall.clock.now();
    wall.advance(59_000);
    expect(h.gw.session('sleeper')?.state).toBe('asleep');
    wall.advance(2_000);
    expect(h.gw.session('sleeper')?.state).toBe('lost');
  });
});
