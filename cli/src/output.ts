// What the CLI prints: aligned tables for people, JSON for scripts, and text from other parties
// (log lines, names) with its control characters made visible, so that a workload cannot move the
// cursor, retitle the window or rewrite the scrollback of the renter's terminal.

export interface Output {
  /** Writes `text` to stdout, then a line break unless `newline` is false. */
  out(text: string, newline?: boolean): void;
  err(text: string, newline?: boolean): void;
}

// C0 controls but tab, DEL, C1 controls, and the bidirectional overrides and isolates that can
// make text read in another order than it runs (CVE-2021-42574).
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character written as an escape: ESC → `\x1b`, U+202E → `\u202e`. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (ch) => {
    const code = ch.charCodeAt(0);
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

export type Cell = string | number | boolean | null | undefined;

/** Columns padded to their widest cell; every cell escaped. Numbers right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '-' : escapeControls(String(cell)))));
  const isNumber = (cell: Cell) => typeof cell === 'number' || /^-?\d+(\.\d+)?$/.test(String(cell));
  const numeric = headers.map((_, i) => rows.some((row) => row[i] != null) && rows.every((row) => row[i] == null || isNumber(row[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => [...(row[i] ?? '')].length)));
  const line = (cells: readonly string[], head: boolean) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i]! - [...cell].length));
        return numeric[i] && !head ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase()), true), ...text.map((row) => line(row, false))].join('\n');
}

/** `key  value` lines, keys padded; values escaped. */
export function fields(pairs: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined ? '-' : escapeControls(String(v))}`).join('\n');
}

export const json = (value: unknown) => JSON.stringify(value, null, 2);
