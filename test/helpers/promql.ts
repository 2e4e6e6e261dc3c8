/**
 * Just enough of PromQL and the Prometheus text format to check that dashboards and alert
 * rules name metrics and labels that exist. Syntax is promtool's job; this only finds the
 * selectors: `metric{label op "value", …}`.
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}
export interface Selector {
  metric: string;
  matchers: Matcher[];
}

type Token = { kind: 'ident' | 'string' | 'number' | 'op' | 'punct'; text: string };

// Keywords followed by a list of label names, not metrics.
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
// Aggregations may be followed by `by (…)` before their arguments.
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
]);

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const space = /^\s+/.exec(rest);
    if (space) {
      i += space[0].length;
      continue;
    }
    if (rest[0] === '#') {
      i += (/^#[^\n]*/.exec(rest) as RegExpExecArray)[0].length;
      continue;
    }
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      let j = 1;
      let text = '';
      while (j < rest.length && rest[j] !== quote) {
        if (rest[j] === '\\' && quote !== '`') {
          text += rest[j + 1] ?? '';
          j += 2;
        } else text += rest[j++];
      }
      if (j >= rest.length) throw new Error(`unterminated string in ${expr}`);
      tokens.push({ kind: 'string', text });
      i += j + 1;
      continue;
    }
    const match =
      /^[0-9.][0-9a-zA-Z.+]*/.exec(rest) ?? // numbers and durations (5m, 1e3, 0.99)
      /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest) ??
      /^(=~|!~|!=|==|>=|<=)/.exec(rest);
    if (match) {
      const text = match[0];
      const kind = /^[0-9.]/.test(text) ? 'number' : /^[a-zA-Z_:]/.test(text) ? 'ident' : 'op';
      tokens.push({ kind, text });
      i += text.length;
      continue;
    }
    tokens.push({ kind: 'punct', text: rest[0] as string });
    i += 1;
  }
  return tokens;
}

/** The index after the bracket that closes the one at `start`. */
function skipGroup(tokens: Token[], start: number, open: string, close: string): number {
  let depth = 0;
  for (let i = start; i < tokens.length; i++) {
    if (tokens[i]?.text === open) depth++;
    else if (tokens[i]?.text === close && --depth === 0) return i + 1;
  }
  throw new Error(`unclosed ${open}`);
}

function readMatchers(tokens: Token[], start: number): { matchers: Matcher[]; next: number } {
  const matchers: Matcher[] = [];
  let i = start + 1;
  while (tokens[i]?.text !== '}') {
    const [label, op, value] = [tokens[i], tokens[i + 1], tokens[i + 2]];
    if (
      label?.kind !== 'ident' ||
      !op ||
      !['=', '!=', '=~', '!~'].includes(op.text) ||
      value?.kind !== 'string'
    )
      throw new Error(`bad label matcher at ${tokens.slice(i, i + 3).map((t) => t.text)}`);
    matchers.push({ label: label.text, op: op.text as Matcher['op'], value: value.text });
    i += 3;
    if (tokens[i]?.text === ',') i++;
  }
  return { matchers, next: i + 1 };
}

/** Every series selector in a PromQL expression. */
export function selectors(expr: string): Selector[] {
  const tokens = tokenize(expr);
  const found: Selector[] = [];
  let i = 0;
  while (i < tokens.length) {
    const token = tokens[i] as Token;
    const next = tokens[i + 1];
    if (token.kind === 'ident' && LABEL_LISTS.has(token.text) && next?.text === '(') {
      i = skipGroup(tokens, i + 1, '(', ')');
    } else if (
      token.kind === 'ident' &&
      (KEYWORDS.has(token.text.toLowerCase()) || AGGREGATIONS.has(token.text) || next?.text === '(')
    ) {
      i += 1; // an operator, or a function or aggregation (its arguments are read next)
    } else if (token.kind === 'ident') {
      if (next?.text === '{') {
        const { matchers, next: after } = readMatchers(tokens, i + 1);
        found.push({ metric: token.text, matchers });
        i = after;
      } else {
        found.push({ metric: token.text, matchers: [] });
        i += 1;
      }
    } else if (token.text === '{') {
      const { matchers, next: after } = readMatchers(tokens, i);
      const name = matchers.find((m) => m.label === '__name__' && m.op === '=');
      if (!name) throw new Error(`a selector without a metric name in ${expr}`);
      found.push({ metric: name.value, matchers: matchers.filter((m) => m !== name) });
      i = after;
    } else if (token.text === '[') {
      i = skipGroup(tokens, i, '[', ']'); // ranges and subquery steps
    } else i += 1;
  }
  return found;
}

/** Grafana's variables made into PromQL: intervals become 5m, any other variable matches anything. */
export function withoutGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$\{?__(rate_interval|interval|range)\}?/g, '5m')
    .replace(/\$\{?[a-zA-Z_]\w*(:\w+)?\}?/g, '.*');
}

export interface Scrape {
  /** `# TYPE` name → type. */
  families: Map<string, string>;
  /** Sample name → the label sets of its samples. */
  samples: Map<string, Array<Record<string, string>>>;
}

/** Parses the Prometheus text exposition format. */
export function parseScrape(text: string): Scrape {
  const families = new Map<string, string>();
  const samples = new Map<string, Array<Record<string, string>>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) families.set(type[1] as string, type[2] as string);
    if (!line || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (sample[3] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    const name = sample[1] as string;
    samples.set(name, [...(samples.get(name) ?? []), labels]);
  }
  return { families, samples };
}

/** The family a sample name belongs to: `x_bucket` of a histogram x, and so on. */
export function familyOf(scrape: Scrape, name: string): string | undefined {
  if (scrape.families.has(name)) return name;
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = suffix?.[1];
  if (base && ['histogram', 'summary'].includes(scrape.families.get(base) ?? ''))
    return suffix?.[2] === 'bucket' && scrape.families.get(base) === 'summary' ? undefined : base;
  return undefined;
}
