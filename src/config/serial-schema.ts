/**
 * The `serial:` section: the driver host's settings and the device maps. Device maps may also
 * live in files named by `serial.include` (merged into `devices` by the loader, which reports
 * their problems at their own FILE:LINE:COL).
 *
 * Each device is validated by a discriminated union on `driver`, so a device's `options:` is
 * checked by its driver's own zod schema at load time and editors get per-driver completion
 * from the generated JSON Schema. An unknown driver name is one clear error at `driver`.
 */
import { z } from 'zod';
import { builtinDrivers } from '../../drivers/index.js';
import type { DriverDefinition } from '../serial/driver-api.js';
import { validateTopicName } from '../core/topic.js';
import { duration } from './unit-schema.js';
import { backoffSchema } from './backoff-schema.js';
import { parsed, whenParsed } from './cross-checks.js';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const HEX16 = /^(0x)?[0-9A-Fa-f]{1,4}$/;

export const usbMatchSchema = z
  .object({
    vendor_id: z.string().regex(HEX16, { error: () => 'expected a USB id in hex, e.g. "0403"' }).describe('USB vendor id in hex, e.g. "0403" (FTDI).'),
    product_id: z.string().regex(HEX16, { error: () => 'expected a USB id in hex, e.g. "6001"' }).describe('USB product id in hex, e.g. "6001".'),
    serial_number: z.string().min(1).optional().describe('The adapter serial number, to tell identical adapters apart.'),
  })
  .strict()
  .describe('Matches a USB adapter by its ids, whatever tty it is given (resolved at every open).');

export const metricMapSchema = z
  .object({
    name: z.string().min(1).optional().describe('Publish the metric under this name instead.'),
    scale: z.number().default(1).describe('value × scale + offset (numbers only).'),
    offset: z.number().default(0),
    unit: z.string().optional().describe('Unit in the JSON payload (overrides the driver unit).'),
    type: z.enum(['number', 'int', 'bool', 'string']).optional().describe('Convert the value: number, int (rounded), bool (non-zero), string.'),
    decimals: z.number().int().min(0).max(12).optional().describe('Round numbers to this many decimals (after scale and offset).'),
    deadband: z.number().min(0).optional().describe('Skip a value that differs from the last published one by less than this (0: skip only equal values).'),
    min_interval: duration().optional().describe('Publish this metric at most once per interval.'),
    max_interval: duration({ min: 1 }).optional().describe('Publish at least this often even when the deadband holds it back (a heartbeat).'),
    ignore: z.boolean().default(false).describe('Never publish this metric.'),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.min_interval !== undefined && m.max_interval !== undefined && m.min_interval >= m.max_interval) {
      ctx.addIssue({ code: 'custom', path: ['max_interval'], message: 'must be longer than min_interval, or the heartbeat can never come; raise max_interval or lower min_interval' });
    }
  });

/** Two metrics published under one name would share one topic and one deadband. */
const metricsSchema = z.record(z.string(), metricMapSchema).superRefine((metrics, ctx) => {
  const by = new Map<string, string>();
  for (const [key, m] of Object.entries(metrics)) {
    if (m.ignore) continue;
    const name = m.name ?? key;
    const other = by.get(name);
    // At a map entry (no name: key), its value is a map and "got a map" would say nothing.
    if (other !== undefined) ctx.addIssue({ code: 'custom', path: [key, ...(m.name !== undefined ? ['name'] : [])], ...(m.name === undefined ? { params: { plain: true } } : {}), message: `metric "${other}" is already published as "${name}"; give one of them another name` });
    else by.set(name, key);
  }
});

const parityValues = ['none', 'even', 'odd', 'mark', 'space'] as const;

/**
 * A topic template: placeholders from `allowed` only, and what it renders to must be a valid
 * topic name (no wildcards) [MQTT-4.7.3-1], [MQTT-4.7.3-2].
 */
function topicTemplate(allowed: readonly string[], required: readonly string[] = []) {
  return z.string().min(1).superRefine((t, ctx) => {
    for (const m of t.matchAll(/\{([^}]*)\}/g)) {
      if (!allowed.includes(m[1]!)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${m[1]}}; use ${allowed.map((a) => `{${a}}`).join(', ')}` });
    }
    for (const r of required) {
      if (!t.includes(`{${r}}`)) ctx.addIssue({ code: 'custom', message: `the template needs {${r}}, or every ${r} lands on one topic` });
    }
    const check = validateTopicName(t.replace(/\{[^}]*\}/g, 'x'));
    if (!check.ok) ctx.addIssue({ code: 'custom', message: `not a valid topic: ${check.reason}` });
  });
}

/** Keys every device has, whatever its driver. */
const deviceShape = {
  id: z.string().regex(ID_PATTERN, { error: () => 'use letters, digits, "_", "-" or "." (it appears in topics)' }).describe('Device name, used in topics, logs and state topics.'),
  port: z.union([z.string().min(1), usbMatchSchema], { error: () => 'expected a device path such as /dev/ttyUSB0 or a USB match { vendor_id, product_id, serial_number }' }).describe('A device path (prefer /dev/serial/by-id/...) or a USB match {vendor_id, product_id, serial_number}.'),
  baud: z.number().int().min(50).max(4_000_000).default(9600).describe('Baud rate.'),
  data_bits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)], { error: () => 'must be 5, 6, 7 or 8' }).default(8),
  parity: z.enum(parityValues).default('none'),
  stop_bits: z.union([z.literal(1), z.literal(1.5), z.literal(2)], { error: () => 'must be 1 or 2' }).default(1),
  topic: topicTemplate(['device', 'metric', 'driver'], ['metric']).default('sensors/{device}/{metric}').describe('Topic template: {device}, {metric}, {driver}.'),
  payload: z.enum(['json', 'plain']).default('json').describe('json: {"value":…,"unit":…,"ts":…}; plain: the value as text.'),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: () => 'must be 0, 1 or 2' }).default(0),
  retain: z.boolean().default(false),
  only_mapped: z.boolean().default(false).describe('Publish only the metrics listed under metrics.'),
  metrics: metricsSchema.default({}).describe('Per-metric rename, scale, offset, unit, type, deadband, intervals.'),
  command_topic: topicTemplate(['device', 'driver']).optional().describe('Messages here go to the driver (a line, a register write); the result is published to <command_topic>/result.'),
};

function deviceSchemaFor(d: DriverDefinition) {
  return z
    .object({
      ...deviceShape,
      driver: z.literal(d.name).describe(d.summary),
      // The driver's own schema: its errors come out at devices[i].options.<key>.
      options: d.options.prefault({}).describe(`Options of the ${d.name} driver.`),
    })
    .strict()
    .superRefine((dev, ctx) => {
      const known = d.metricNames?.(dev.options as never);
      // None known: the options are wrong (a regex pattern without named groups), and say so.
      if (known === undefined || known.length === 0) return;
      for (const key of Object.keys(dev.metrics)) {
        if (!known.includes(key)) ctx.addIssue({ code: 'custom', path: ['metrics', key], params: { plain: true }, message: `this ${d.name} device has no metric "${key}"; name one of: ${known.join(', ')}` });
      }
    });
}

const driverNames = builtinDrivers.map((d) => d.name);

export const deviceSchema = z.discriminatedUnion(
  'driver',
  builtinDrivers.map((d) => deviceSchemaFor(d)) as unknown as [ReturnType<typeof deviceSchemaFor>, ...ReturnType<typeof deviceSchemaFor>[]],
  { error: (iss) => (iss.code === 'invalid_union' ? `unknown driver; use one of: ${driverNames.join(', ')}` : undefined) },
);

/** Same physical port: same path, or same USB match. */
export function portKey(port: string | z.output<typeof usbMatchSchema>): string {
  if (typeof port === 'string') return port;
  const hex = (s: string) => parseInt(s.replace(/^0x/i, ''), 16).toString(16).padStart(4, '0');
  return `usb:${hex(port.vendor_id)}:${hex(port.product_id)}:${port.serial_number ?? '*'}`;
}

const lineKeys = ['baud', 'data_bits', 'parity', 'stop_bits'] as const;

export const serialSchema = z
  .object({
    include: z.array(z.string().min(1)).default([]).describe('Device map files (YAML with a devices: list), relative to this file.'),
    devices: z.array(deviceSchema).default([]).describe('Serial devices.'),
    state_prefix: topicTemplate([]).default('$SYS/outpost/serial').describe('Retained <prefix>/<device>/state (online|offline) and <prefix>/<device>/stats (counters).'),
    stats_interval: duration({ min: 1000 }).prefault('60s').describe('How often the counters are published.'),
    reopen: backoffSchema({ base: 1000, cap: 30_000 }).describe('Reopening a lost or missing port: decorrelated jitter between base and cap; never gives up.'),
    max_pending: z.number().int().min(1).max(100_000).default(256).describe('Readings per port waiting for the bus (outbox commit) before the port is paused.'),
  })
  .strict()
  .superRefine((s, ctx) => {
    const ids = new Set<string>();
    const ports = new Map<string, number>();
    if (!Array.isArray(s.devices)) return;
    s.devices.forEach((d, i) => {
      // An id is compared whatever else is wrong with its device; the rest needs the whole device.
      if (parsed(ctx, ['devices', i, 'id']) && typeof d.id === 'string') {
        if (ids.has(d.id)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `device id "${d.id}" is used twice; ids must be unique` });
        ids.add(d.id);
      }
      if (!parsed(ctx, ['devices', i])) return; // its own problems are reported; the others are still checked
      // serialport's POSIX binding (Linux, macOS) refuses these: the port would never open.
      if (process.platform !== 'win32') {
        if (d.parity === 'mark' || d.parity === 'space') ctx.addIssue({ code: 'custom', path: ['devices', i, 'parity'], message: `parity ${d.parity} cannot be set on Linux serial ports; use none, even or odd (for mark parity, none with stop_bits: 2 sends the same bits)` });
        if (d.stop_bits === 1.5) ctx.addIssue({ code: 'custom', path: ['devices', i, 'stop_bits'], message: '1.5 stop bits cannot be set on Linux serial ports; use 1 or 2 (2 suits a device that wants 1.5)' });
      }
      const key = portKey(d.port);
      const first = ports.get(key);
      if (first === undefined) {
        ports.set(key, i);
        return;
      }
      const other = s.devices[first]!;
      const shared = builtinDrivers.find((x) => x.name === d.driver)?.shared === true;
      if (!shared || d.driver !== other.driver) {
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'port'], message: `port is already used by device "${other.id}"; only ${builtinDrivers.filter((x) => x.shared).map((x) => x.name).join(', ') || 'bus'} devices of one driver may share a port` });
        return;
      }
      for (const k of lineKeys) {
        if (d[k] !== other[k]) ctx.addIssue({ code: 'custom', path: ['devices', i, k], message: `must match device "${other.id}" on the same port (${String(other[k])})` });
      }
    });
  }, whenParsed);

export type SerialConfig = z.output<typeof serialSchema>;
export type DeviceConfig = SerialConfig['devices'][number];
export type MetricMapConfig = z.output<typeof metricMapSchema>;
export type UsbMatch = z.output<typeof usbMatchSchema>;
