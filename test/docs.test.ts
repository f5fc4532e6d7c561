/**
 * Tests that keep the docs honest: README's quick-start commands are npm
 * scripts, every command and option it shows exists (and `--help` works for
 * each), its relative links resolve, and every npm script names files that
 * exist; the relative links and anchors of every doc resolve, and every
 * hcp_* metric the docs, alerts and dashboard name is registered by the
 * engine. README-dependent tests are skipped while README.md is absent.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS, OPTIONS } from '../src/config.js';
import { createMetrics } from '../src/metrics/index.js';
import { ROOT, runCli, describeRun } from './helpers.js';

const README = join(ROOT, 'README.md');
const hasReadme = existsSync(README);
const readme = hasReadme ? readFileSync(README, 'utf8') : '';
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };

/** SPEC §6 commands. */
const COMMANDS = ['run', 'partition', 'validate', 'process', 'stats', 'report', 'generate'];
const CLI_PREFIXES = [/^npx\s+healthcare-pipeline\b/, /^node\s+dist\/src\/cli\.js\b/];

/** Lines of fenced code blocks, with `$ ` prompts and trailing comments removed, split on `&&` / `;`. */
function codeBlockCommands(md: string): string[] {
  const out: string[] = [];
  const re = /^```[^\n]*\n([\s\S]*?)^```/gm;
  for (const m of md.matchAll(re)) {
    for (let line of m[1].split('\n')) {
      line = line.replace(/^\s*\$\s+/, '').replace(/\s+#.*$/, '').trim();
      for (const part of line.split(/\s*(?:&&|;)\s*/)) if (part) out.push(part);
    }
  }
  return out;
}

/** Inline code spans (`...`) outside fenced blocks. */
function inlineCode(md: string): string[] {
  const text = md.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  return [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1].trim());
}

/** A CLI invocation without leading `VAR=value` assignments, or null. */
function cliInvocation(cmd: string): string[] | null {
  const s = cmd.replace(/^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+/, '');
  for (const p of CLI_PREFIXES) {
    const m = p.exec(s);
    if (m) return s.slice(m[0].length).trim().split(/\s+/).filter(Boolean);
  }
  return null;
}

/** The `## Command line` section's table: the command word of each row. */
function commandTable(md: string): string[] {
  const start = md.search(/^#{2,3} Command line\s*$/m);
  if (start === -1) return [];
  const lines = md.slice(start).split('\n').slice(1);
  const end = lines.findIndex((l) => /^#{1,3} /.test(l));
  return (end === -1 ? lines : lines.slice(0, end))
    .filter((l) => l.startsWith('|'))
    .map((l) => /^\|\s*`([a-z]+)[^`]*`/.exec(l)?.[1])
    .filter((c): c is string => c !== undefined);
}

describe('package.json', () => {
  it('has the quick-start scripts (npm start, npm test) and the bin', () => {
    expect(pkg.scripts.start).toBeDefined();
    expect(pkg.scripts.test).toBeDefined();
    expect(pkg.bin['healthcare-pipeline']).toBe('dist/src/cli.js');
    // The bin runs with the engine's V8 flags, as `npm start` does.
    const flags = ENGINE_NODE_FLAGS.join(' ');
    expect(readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    expect(pkg.scripts.start).toContain(`node ${flags} dist/src/cli.js`);
  });

  it.each(Object.entries(pkg.scripts))('script %s names files that exist', (_name, script) => {
    // `bash scripts/x.sh`, `node dist/<p>.js` (built from <p>.ts), `-p tsconfig.json`.
    const files: string[] = [];
    for (const m of script.matchAll(/(?:^|\s)(scripts\/[\w./-]+)/g)) files.push(m[1]);
    for (const m of script.matchAll(/(?:^|\s)dist\/([\w./-]+)\.js/g)) files.push(`${m[1]}.ts`);
    for (const m of script.matchAll(/-p\s+([\w./-]+\.json)/g)) files.push(m[1]);
    for (const f of files) expect(existsSync(join(ROOT, f)), `${f} (from "${script}")`).toBe(true);
  });

  it('scripts run other scripts that exist', () => {
    for (const [name, script] of Object.entries(pkg.scripts)) {
      for (const m of script.matchAll(/npm run ([\w:-]+)/g)) expect(pkg.scripts[m[1]], `${name} → npm run ${m[1]}`).toBeDefined();
    }
  });
});

describe('CLI help', () => {
  it('the top-level help lists every SPEC §6 command', async () => {
    const r = await runCli(['--help']);
    expect(r.code, describeRun(r)).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
  });

  it.each(COMMANDS)('%s --help exits 0 with a usage line', async (c) => {
    const r = await runCli([c, '--help']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: healthcare-pipeline ${c}\\b`, 'm'));
  });

  it.each(['frobnicate', 'constructor', 'toString'])('an unknown command with --help (%s) is exit 2 naming it, not some help as if all were well', async (c) => {
    const r = await runCli([c, '--help']);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.json).toMatchObject({ command: c, status: 'error', exit_code: 2, error: { code: 'HCP_ERR_USAGE', message: `Unknown command "${c}"` } });
  });

  it.each([[[]], [['--workers', '2']]])('no command (%j) is exit 2: the usage on stdout, then the usage error summary as its last line', async (args) => {
    const r = await runCli(args);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stdout).toMatch(/^Usage: healthcare-pipeline <command>/);
    expect(r.json, describeRun(r)).toEqual({ command: '', status: 'error', exit_code: 2, error: { code: 'HCP_ERR_USAGE', message: `A command is needed: ${COMMANDS.join(', ')}` } });
    expect(r.stderr).toMatch(/^error: A command is needed/m);
  });

  it.each(['--help', '-h'])('%s alone is exit 0 with the usage only (no summary: nothing was run)', async (flag) => {
    const r = await runCli([flag]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/^Usage: healthcare-pipeline <command>/);
    expect(r.json).toBeNull();
  });
});

describe.skipIf(!hasReadme)('README.md', () => {
  const blocks = codeBlockCommands(readme);
  const inline = inlineCode(readme);

  it('quick start shows npm start and npm test, and every npm command in it is a script', () => {
    const npm = [...blocks, ...inline].filter((c) => /^npm\s/.test(c));
    expect(npm).toContain('npm start');
    expect(npm).toContain('npm test');
    for (const c of npm) {
      const m = /^npm\s+(?:run\s+([\w:-]+)|(start|test))\b/.exec(c);
      if (m) expect(pkg.scripts[m[1] ?? m[2]], c).toBeDefined();
      else expect(c, 'an npm command other than run/start/test/ci').toMatch(/^npm\s+(ci|install)\b/);
    }
  });

  const invocations = [...blocks, ...inline].map(cliInvocation).filter((x): x is string[] => x !== null && x.length > 0 && /^[a-z]+$/.test(x[0]));

  it('shows the CLI', () => {
    expect(invocations.length + commandTable(readme).length).toBeGreaterThan(0);
  });

  it('every CLI invocation names a real command whose --help exits 0', async () => {
    const commands = [...new Set([...invocations.map((x) => x[0]), ...commandTable(readme)])];
    for (const c of commands) {
      expect(COMMANDS, `README shows "${c}"`).toContain(c);
      const r = await runCli([c, '--help']);
      expect(r.code, `${c} --help\n${describeRun(r)}`).toBe(0);
    }
  });

  it('the command table lists exactly the CLI commands', () => {
    const table = commandTable(readme);
    expect([...table].sort()).toEqual([...COMMANDS].sort());
  });

  it('every --option the README mentions is a real option', () => {
    const known = new Set(Object.keys(OPTIONS));
    const mentioned = new Set<string>();
    for (const c of [...blocks, ...inline]) for (const m of c.matchAll(/(?:^|\s)--([a-z][a-z-]*)/g)) mentioned.add(m[1]);
    // Options of other tools shown in the README.
    for (const other of ['reporter']) mentioned.delete(other);
    // Node's flags the engine runs with (README explains them).
    for (const flag of ENGINE_NODE_FLAGS) mentioned.delete(flag.replace(/^--/, '').split('=')[0]);
    expect([...mentioned].filter((o) => !known.has(o))).toEqual([]);
  });

  it('relative links point to files that exist', () => {
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l) && !l.startsWith('#'));
    expect(links.length).toBeGreaterThan(0);
    const missing = [...new Set(links.map((l) => l.split('#')[0]))].filter((l) => !existsSync(join(ROOT, l)));
    expect(missing).toEqual([]);
  });

  it('in-page anchors point to headings', () => {
    const slug = (h: string) => h.trim().toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s+/g, '-');
    const anchors = new Set([...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
    for (const m of readme.matchAll(/\]\(#([^)]+)\)/g)) expect(anchors, `#${m[1]}`).toContain(m[1]);
  });
});

/** Every Markdown doc a reader is sent to, beside README. */
const DOCS = ['README.md', 'docs/ARCHITECTURE.md', 'docs/AIRFLOW.md', 'docs/PERFORMANCE.md', 'docs/performance/HISTORY.md', 'monitoring/README.md', ...readdirSync(join(ROOT, 'docs', 'decisions')).filter((f) => f.endsWith('.md')).map((f) => `docs/decisions/${f}`)];
const slug = (h: string) => h.trim().toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s+/g, '-');
const headings = (file: string) => new Set([...readFileSync(file, 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));

describe('every doc', () => {
  it.each(DOCS)('%s: relative links and their anchors resolve', (doc) => {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1];
      if (/^[a-z]+:/.test(link)) continue;
      const [path, anchor] = link.split('#');
      const target = path ? join(ROOT, dirname(doc), path) : join(ROOT, doc);
      expect(existsSync(target), `${doc} → ${link}`).toBe(true);
      if (anchor && target.endsWith('.md')) expect(headings(target), `${doc} → ${link}`).toContain(anchor);
    }
  });

  it('every hcp_* metric named in the docs, alerts and dashboard is one the engine registers', () => {
    const known = new Set((createMetrics({ collectDefault: false }).registry.getMetricsAsArray() as { name: string }[]).map((m) => m.name));
    const files = [...DOCS, 'monitoring/alerts.yml', 'monitoring/grafana/dashboards/healthcare-pipeline.json'];
    for (const f of files) {
      for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/\bhcp_[a-z_]+/g)) {
        const name = m[0].replace(/_(bucket|sum|count)$/, '');
        if (name === 'hcp_pseudonym_key' || name === 'hcp_curated' || name === 'hcp_monthly_statistics' || name === 'hcp_airflow') continue; // Airflow names
        expect(known, `${f}: ${m[0]}`).toContain(name);
      }
    }
  });
});
