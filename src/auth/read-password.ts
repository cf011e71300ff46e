/**
 * The password for `outpost passwd`: on a terminal, a prompt without echo (asked twice);
 * otherwise the first line of stdin (for scripts: `echo secret | outpost passwd FILE USER`).
 */
import type { Readable, Writable } from 'node:stream';

type Input = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

function firstLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    input.setEncoding('utf8');
    const done = () => resolve(data.split(/\r?\n/)[0] ?? '');
    input.on('data', (c: string) => {
      data += c;
      if (data.includes('\n')) {
        input.pause();
        done();
      }
    });
    input.once('end', done);
    input.once('error', reject);
  });
}

function promptHidden(input: Input, output: Writable, prompt: string): Promise<string> {
  return new Promise((resolve) => {
    output.write(prompt);
    input.setRawMode!(true);
    input.setEncoding('utf8');
    let value = '';
    const onData = (c: string) => {
      for (const ch of c) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          input.off('data', onData);
          input.setRawMode!(false);
          input.pause();
          output.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          input.setRawMode!(false);
          process.kill(process.pid, 'SIGINT');
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on('data', onData);
    input.resume();
  });
}

export async function readPassword(input: Input, output: Writable): Promise<string> {
  if (!input.isTTY || input.setRawMode === undefined) return firstLine(input);
  const first = await promptHidden(input, output, 'Password: ');
  const again = await promptHidden(input, output, 'Repeat password: ');
  if (first !== again) throw new Error('the passwords do not match');
  return first;
}
