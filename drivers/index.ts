/**
 * The built-in drivers, listed explicitly (never discovered by scanning the disk): the
 * config schema validates each device's options with its driver's schema, and the host
 * looks drivers up here by name. A new driver is a folder under drivers/ plus one line here.
 */
import type { DriverDefinition } from '../src/serial/driver-api.js';
import { lineJson } from './line-json/index.js';
import { lineKv } from './line-kv/index.js';
import { modbusRtu } from './modbus-rtu/index.js';
import { nmea } from './nmea/index.js';
import { regex } from './regex/index.js';

export const builtinDrivers = [lineJson, lineKv, nmea, modbusRtu, regex] as const satisfies readonly DriverDefinition[];

export type DriverRegistry = ReadonlyMap<string, DriverDefinition>;

export function driverRegistry(drivers: readonly DriverDefinition[] = builtinDrivers): DriverRegistry {
  return new Map(drivers.map((d) => [d.name, d]));
}
