/**
 * The `outpost` command line, as functions of (argv, io) → exit code so tests drive it
 * without a process. main.ts only binds it to the real process.
 *
 *   argv → parseCommand → help | version | check FILE | run [--config FILE]
 *   run:  loadConfig → createRootLogger → Gateway.start → wait for a signal → Gateway.stop
 *         SIGHUP meanwhile: Reloader (src/reload/reloader.ts) re-reads the file and applies it
 */
import { passwdCommand } from './auth/passwd-command.js';
import { loadAccessControl } from './auth/access-control.js';
import { readPassword } from './auth/read-password.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { DestinationStream, Logger } from 'pino';
import { isOutpostError, OutpostError } from './core/errors.js';
import { ProgressMonitor, type ProgressProbe, type StuckComponent } from './core/progress.js';
import { authFilesNamed, loadConfig } from './config/load.js';
import { logLevelStep } from './reload/log-level-step.js';
import type { Config } from './config/schema.js';
import { Gateway, type GatewayDeps, type ListenerAddress } from './gateway.js';
import { createRootLogger, flushLogger } from './observability/logger.js';
import { SystemdNotifier } from './observability/systemd-notify.js';
import { createMetricsServer, createSysPublisher, isObservable } from './observability/metrics-endpoint.js';
import { statusCommand } from './observability/status-command.js';
import { Reloader } from './reload/reloader.js';
import type { ReloadStep } from './reload/step.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: outpost <command> [options]

Commands:
  run [--config FILE]   start the gateway; without --config it uses the embedded
                        default (MQTT on 127.0.0.1:1883, state in ./data); SIGHUP
                        (systemctl reload outpost) re-reads the config file
  check FILE            validate a config file and list every problem in it
  passwd [-D] FILE USER add a user to a password file or change their password
                        (prompted without echo, or the first line of stdin); -D deletes
  status [--url URL]    print clients, devices, sensors and bridge backlogs of the
                        running gateway (default URL http://127.0.0.1:9100)
  help                  show this help

Options:
  -c, --config FILE     config file for run (YAML, see config/outpost.example.yaml)
  -h, --help            show this help
  -V, --version         print the version

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.
`;

/** What `run` needs from the process; main.ts binds it to node's `process`. */
export interface ProcessHooks {
  /** Calls fn on SIGTERM/SIGINT; returns the unsubscribe function. */
  onSignal(fn: (signal: string) => void): () => void;
  /** Calls fn on SIGHUP (live reload); returns the unsubscribe function. */
  onReload?(fn: () => void): () => void;
  /** Calls fn on uncaughtException/unhandledRejection; returns the unsubscribe function. */
  onCrash(fn: (err: unknown, origin: string) => void): () => void;
  /** Leaves at once, without waiting for cleanup (second signal, stop timeout, crash). */
  exitNow(code: number): void;
}

export interface GatewayLike {
  readonly addresses: ListenerAddress[];
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  /** The live-reload steps; without them a reload changes nothing but the log level. */
  reloadSteps?(configFile: string | undefined): ReloadStep[];
}

export interface CliDeps {
  stdout(text: string): void;
  stderr(text: string): void;
  process: ProcessHooks;
  /** Log output of `run`; default stdout. */
  logDestination?: DestinationStream;
  /** Whether log output is a terminal (log.format auto); default: stdout's isTTY. */
  isTty?: boolean;
  /** How long `stop` may take after a signal before we exit 1 anyway. */
  stopTimeoutMs?: number;
  /** Injection point for tests; default `new Gateway(config, deps)`. */
  createGateway?: (config: Config, deps: GatewayDeps) => GatewayLike;
  /** Environment for sd_notify (NOTIFY_SOCKET, WATCHDOG_USEC); default none, so no-op. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The password for `passwd`; default: a prompt without echo, or stdin's first line. */
  readPassword?: () => Promise<string>;
  /** Injection point for tests; default `new SystemdNotifier({ env, log })`. */
  createNotifier?: (log: Logger) => NotifierLike;
}

/** What `run` tells the service manager (src/observability/systemd-notify.ts). */
export interface NotifierLike {
  ready(status?: string): Promise<void>;
  reloading?(): Promise<void>;
  stopping(): Promise<void>;
  startWatchdog(stuck?: () => readonly StuckComponent[]): void;
  close(): void;
}

export type Command =
  | { name: 'help' }
  | { name: 'version' }
  | { name: 'check'; file: string }
  | { name: 'passwd'; file: string; user: string; delete: boolean }
  | { name: 'run'; config: string | undefined }
  | { name: 'status'; url: string | undefined };

const usageError = (message: string) => new OutpostError('CLI_USAGE', message);

/** argv (without node and script) → Command, or OutpostError('CLI_USAGE'). */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
        delete: { type: 'boolean', short: 'D' },
        url: { type: 'string' },
      },
    });
  } catch (err) {
    throw usageError(parseArgsMessage(err));
  }
  const { values, positionals } = parsed;
  if (values.help) return { name: 'help' };
  if (values.version) return { name: 'version' };
  const [name, ...rest] = positionals;
  if (name === undefined) throw usageError('missing command');
  if (values.delete && name !== 'passwd') throw usageError(`option -D does not apply to "${name}"`);
  if (values.url !== undefined && name !== 'status') throw usageError(`option --url does not apply to "${name}"`);
  const noConfig = () => {
    if (values.config !== undefined) throw usageError(`option --config does not apply to "${name}"`);
  };
  const noExtra = (allowed: number) => {
    if (rest.length > allowed) throw usageError(`unexpected argument "${rest[allowed]}" for "${name}"`);
  };
  switch (name) {
    case 'help':
      noConfig();
      return { name: 'help' };
    case 'run':
      noExtra(0);
      return { name: 'run', config: values.config };
    case 'check':
      noConfig();
      if (rest[0] === undefined) throw usageError('check needs the config file: outpost check FILE');
      noExtra(1);
      return { name: 'check', file: rest[0] };
    case 'passwd':
      noConfig();
      if (rest[0] === undefined || rest[1] === undefined) throw usageError('passwd needs the file and the user: outpost passwd [-D] FILE USER');
      noExtra(2);
      return { name: 'passwd', file: rest[0], user: rest[1], delete: values.delete === true };
    case 'status':
      noConfig();
      noExtra(0);
      return { name: 'status', url: values.url };
    default:
      throw usageError(`unknown command "${name}"`);
  }
}

function parseArgsMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const option = /'([^']+)'/.exec(e.message ?? '')?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option "${option}"`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    // node says "-c, --config <value>"; name the long form only
    return `option ${/--[\w-]+/.exec(option)?.[0] ?? option} needs a value`;
  }
  return String(e.message ?? err);
}

/** The version in outpost's package.json, found from src/ and from dist/src/ alike. */
export function packageVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'outpost' && pkg.version) return pkg.version;
    } catch {
      // not here; look one directory up
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}

/** Runs one CLI invocation; resolves to the exit code. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!isOutpostError(err, 'CLI_USAGE')) throw err;
    deps.stderr(`outpost: ${err.message}; see "outpost --help"\n`);
    return EXIT_USAGE;
  }
  switch (command.name) {
    case 'help':
      deps.stdout(USAGE);
      return EXIT_OK;
    case 'version':
      deps.stdout(`${packageVersion()}\n`);
      return EXIT_OK;
    case 'check':
      return checkCommand(command.file, deps);
    case 'passwd':
      return passwdCommand(command.file, command.user, command.delete, {
        stdout: deps.stdout,
        stderr: deps.stderr,
        readPassword: deps.readPassword ?? (() => readPassword(process.stdin, process.stderr)),
      });
    case 'run':
      return runCommand(command.config, deps);
    case 'status':
      return statusCommand(command.url, deps);
  }
}

/**
 * The config file, and the password file and ACL it names (relative to it): the problems of
 * all three in one run, those of the auth files even when the config itself does not load.
 */
async function checkCommand(file: string, deps: CliDeps): Promise<number> {
  const problems: string[] = [];
  const isConfigError = (err: unknown): err is OutpostError => isOutpostError(err, 'CONFIG_INVALID') || isOutpostError(err, 'CONFIG_UNREADABLE');
  let auth: Config['auth'] | undefined;
  try {
    auth = loadConfig(file, { checkFiles: true }).auth;
  } catch (err) {
    if (!isConfigError(err)) throw err;
    problems.push(err.message);
    if (isOutpostError(err, 'CONFIG_INVALID')) auth = authFilesNamed(file);
  }
  const warnings: string[] = [];
  if (auth !== undefined && (auth.password_file !== undefined || auth.acl_file !== undefined)) {
    try {
      warnings.push(...(await loadAccessControl(auth, file)).warnings);
    } catch (err) {
      if (!isConfigError(err)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) {
    deps.stderr(`${problems.join('\n')}\n`);
    return EXIT_USAGE;
  }
  // Worth saying (a password file others may read, one without users), no reason to fail: still ok, exit 0.
  for (const w of warnings) deps.stderr(`warning: ${w}\n`);
  deps.stdout(`${file}: ok\n`);
  return EXIT_OK;
}

async function runCommand(configFile: string | undefined, deps: CliDeps): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(configFile, { checkFiles: true });
  } catch (err) {
    if (!isOutpostError(err)) throw err;
    deps.stderr(`${err.message}\n`);
    return EXIT_USAGE;
  }
  const log = createRootLogger({ ...config.log, destination: deps.logDestination, isTty: deps.isTty });
  const hooks = deps.process;
  const exitNow = (code: number) => {
    log.flush();
    hooks.exitNow(code);
  };
  const offCrash = hooks.onCrash((err, origin) => {
    log.fatal({ err, origin }, 'crashed');
    exitNow(EXIT_FAILURE);
  });

  const controller = new AbortController();
  let stopping = false;
  let onStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (onStop = resolve));
  // Subscribed before start, so a signal during a slow start still stops cleanly.
  const offSignal = hooks.onSignal((signal) => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      exitNow(EXIT_FAILURE);
      return;
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    controller.abort();
    onStop();
  });
  // Watchdog pings from the start: opening and migrating the store may take a while.
  const notifier = (deps.createNotifier ?? ((l) => new SystemdNotifier({ env: deps.env ?? {}, log: l })))(log);
  // Pings only while every component makes progress (the gateway's probes join below).
  const progress = new ProgressMonitor(config.metrics.stuck_after, { now: () => Date.now() }, () => performance.now());
  notifier.startWatchdog(() => progress.stuck());
  const cleanup = async () => {
    offReload?.();
    notifier.close();
    offSignal();
    offCrash();
    await flushLogger(log);
  };

  log.info({ version: packageVersion(), config: configFile ?? '(embedded default)' }, 'starting');
  const gateway = (deps.createGateway ?? ((c, d) => new Gateway(c, d)))(config, { log, ...(configFile !== undefined ? { configFile } : {}) });
  if (hasProgress(gateway)) progress.watch(() => gateway.progressProbes);
  let listening = false;
  const reloader = new Reloader({
    load: () => loadConfig(configFile, { checkFiles: true, refuseEmpty: true }),
    running: config,
    steps: [logLevelStep(log), ...(gateway.reloadSteps?.(configFile) ?? [])],
    log: log.child({ component: 'reload' }),
    notifier: { reloading: async () => notifier.reloading?.(), ready: (status) => notifier.ready(status) },
  });
  // From here on SIGHUP reloads (one during start-up runs once the gateway is up).
  const offReload = hooks.onReload?.(() => {
    if (!stopping) void reloader.request();
  });
  // Metrics after the gateway: /healthz then reports a gateway that exists.
  // Bridge caps for /healthz come from the config in effect, which a reload may change.
  const live: Config = Object.freeze({ ...config, get bridges() { return reloader.config.bridges; } });
  const metrics = config.metrics.enabled && isObservable(gateway)
    ? createMetricsServer(live, gateway, log.child({ component: 'metrics' }), { listenersUp: () => listening, stuck: () => progress.stuck(), version: packageVersion(), reloads: () => reloader.summary() }) : undefined;
  const sys = isObservable(gateway) ? createSysPublisher(live, gateway, () => listening, () => progress.stuck()) : undefined;
  try {
    await gateway.start(controller.signal);
    listening = true;
    if (!stopping) await startMetrics(metrics, log);
    if (!stopping) sys?.start();
  } catch (err) {
    if (!stopping) {
      // One sentence that says what to do; the stack only for errors we did not foresee.
      if (isOutpostError(err)) log.fatal({ code: err.code }, `startup failed: ${err.message}`);
      else log.fatal({ err }, 'startup failed');
      if (!log.isLevelEnabled('fatal')) deps.stderr(`outpost: startup failed: ${(err as Error).message}\n`);
      await reloader.close();
      sys?.stop();
      await metrics?.stop();
      await gateway.stop().catch(() => undefined);
      await cleanup();
      // A file the config names that cannot be used (a password file, an ACL, a TLS key that
      // does not match) is a bad config like a schema error, and a store written by a newer
      // outpost needs that version or the file moved away, and a store.dir this user may not
      // write (or on a read-only disk) needs someone to fix it: exit 2, which systemd does not
      // restart (RestartPreventExitStatus=2), where 1 means "try again".
      return isOutpostError(err, 'CONFIG_INVALID') || isOutpostError(err, 'CONFIG_UNREADABLE') || isOutpostError(err, 'STORE_INCOMPATIBLE') || isOutpostError(err, 'STORE_NOT_WRITABLE')
        ? EXIT_USAGE
        : EXIT_FAILURE;
    }
    // A signal aborted the start: carry on with the normal stop below.
  }
  if (!stopping) {
    log.info({ listeners: gateway.addresses }, 'gateway started');
    // Every listener is bound now: systemd may start the units ordered after us.
    await notifier.ready(`listening on ${gateway.addresses.map((a) => `${a.type}://${a.host}:${a.port}`).join(', ') || 'no listeners'}`);
    reloader.started();
  }
  // Signal listeners do not keep node's event loop alive; a gateway with nothing to
  // listen on (or a bug) must still run until it is told to stop.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await stopRequested;
  clearInterval(keepAlive);

  await notifier.stopping();
  sys?.stop();
  await metrics?.stop();
  const timeoutMs = deps.stopTimeoutMs ?? 30_000;
  const timer = setTimeout(() => {
    log.error({ timeoutMs }, 'stop timed out, exiting now');
    exitNow(EXIT_FAILURE);
  }, timeoutMs);
  let code = EXIT_OK;
  try {
    await reloader.close(); // a reload in progress finishes before anything stops
    await gateway.stop();
    log.info('stopped');
  } catch (err) {
    log.error({ err }, 'stop failed');
    code = EXIT_FAILURE;
  } finally {
    clearTimeout(timer);
  }
  await cleanup();
  return code;
}

function hasProgress(gateway: object): gateway is { readonly progressProbes: readonly ProgressProbe[] } {
  return 'progressProbes' in gateway;
}

/**
 * Metrics are for watching the gateway, not for running it: a taken port is an error
 * to fix, logged once, while MQTT, sensors and the outbox go on serving.
 */
async function startMetrics(metrics: { start(): Promise<void> } | undefined, log: Logger): Promise<void> {
  try {
    await metrics?.start();
  } catch (err) {
    log.error({ code: isOutpostError(err) ? err.code : undefined }, `metrics not served: ${(err as Error).message}`);
  }
}
