/**
 * A small writer for the Prometheus text exposition format (version 0.0.4):
 * `# HELP`, `# TYPE`, then one `name{label="value"} number` line per sample.
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export type MetricType = 'counter' | 'gauge';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels?: Labels;
  value: number;
}

// Label values escape backslash, double quote and newline; HELP escapes backslash and newline.
const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: readonly Sample[];
}

export class PromText {
  private readonly lines: string[] = [];
  /** The families written so far, for other renderings of the same numbers ($SYS topics). */
  readonly families: Family[] = [];

  /** One metric family; a family with no samples is left out. Counter names end in _total. */
  family(name: string, type: MetricType, help: string, samples: readonly Sample[]): this {
    if (samples.length === 0) return this;
    this.families.push({ name, type, help, samples });
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const s of samples) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
      this.lines.push(`${name}${l} ${formatValue(s.value)}`);
    }
    return this;
  }

  one(name: string, type: MetricType, help: string, value: number): this {
    return this.family(name, type, help, [{ value }]);
  }

  toString(): string {
    return this.lines.length === 0 ? '' : `${this.lines.join('\n')}\n`;
  }
}
