/** Serial devices, live: the driver host restarts only the ports whose devices changed. */
import type { SerialHost } from '../serial/host.js';
import type { ReloadStep } from './step.js';

export function serialStep(host: Pick<SerialHost, 'reload'>): ReloadStep {
  return {
    name: 'serial',
    // serial.include: the loader already merged the included device maps into serial.devices.
    covers: ['serial'],
    async apply(next) {
      return { changes: await host.reload(next.serial) };
    },
  };
}
