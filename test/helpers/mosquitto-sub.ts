/**
 * mosquitto_sub as a persistent, independent subscriber: prints "topic<TAB>retain<TAB>payload"
 * lines, which tests wait on. Killed by pid by stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface SubLine {
  topic: string;
  retain: boolean;
  payload: string;
}

export class MosquittoSub {
  readonly lines: SubLine[] = [];
  private readonly child: ChildProcess;
  private partial = '';
  private err = '';
  private readonly waiters: { match: (l: SubLine) => boolean; resolve: (l: SubLine) => void }[] = [];

  /** `payloadFormat` is what the third field prints: the payload (%p), or e.g. the user properties (%P). */
  constructor(port: number, topics: string[], clientId = `outpost-test-${process.pid}-${Date.now()}`, payloadFormat = '%p') {
    const args = ['-h', '127.0.0.1', '-p', String(port), '-i', clientId, '-q', '1', '-V', '5', '-F', `%t\t%r\t${payloadFormat}`];
    for (const t of topics) args.push('-t', t);
    this.child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.err += c));
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.partial += chunk;
      const parts = this.partial.split('\n');
      this.partial = parts.pop()!;
      for (const raw of parts) {
        const [topic, retain, ...rest] = raw.split('\t');
        const line = { topic: topic!, retain: retain === '1', payload: rest.join('\t') };
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (w.match(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
  }

  on(topic: string): string[] {
    return this.lines.filter((l) => l.topic === topic).map((l) => l.payload);
  }

  wait(match: (l: SubLine) => boolean, what: string, ms = 5000): Promise<SubLine> {
    const found = this.lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`mosquitto_sub did not print ${what} within ${ms} ms; got ${JSON.stringify(this.lines.slice(-10))}; stderr: ${this.err}`)), ms);
      this.waiters.push({ match, resolve: (l) => (clearTimeout(t), resolve(l)) });
    });
  }

  /** Waits for a message on `topic` whose payload satisfies `pred` (default: any), after `from` lines. */
  next(topic: string, pred: (payload: string) => boolean = () => true, ms?: number): Promise<SubLine> {
    return this.wait((l) => l.topic === topic && pred(l.payload), `a message on ${topic}`, ms);
  }

  stop(): void {
    const pid = this.child.pid;
    if (pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}
