// A small SQL lexer, just enough to do what sqld does with its SQL parser before
// executing anything: split a script into statements (sequence / executeMultiple),
// reject `execute` of zero or several statements, list the parameters of a statement
// (the libsql driver cannot report them), and classify a statement (does it take the
// write lock? is it an INSERT/UPDATE/DELETE whose row count and rowid are reported?).
//
// Strings, quoted identifiers and comments are skipped, so their `;` `?` `:x` don't
// count. A `CREATE TRIGGER ... BEGIN ... END;` is one statement (CASE ... END inside
// it is tracked so its END does not close the body).

export interface SqlStatement {
  /** The statement's source text, including its terminating `;` if any. */
  text: string;
  /** First keyword, upper case ('' if the statement starts with something else). */
  keyword: string;
  /** Parameter slots like sqlite3_bind_parameter_name: entry i is the name of
   *  parameter i+1 (`?3`, `:a`, `@a`, `$a`) or null for an anonymous `?` (or a gap). */
  params: (string | null)[];
  /** INSERT/REPLACE (possibly after WITH): last_insert_rowid is reported. */
  isInsert: boolean;
  /** INSERT/REPLACE/UPDATE/DELETE: affected_row_count is reported (sqld does the same). */
  isIud: boolean;
  isExplain: boolean;
  /** Whether the statement may write, i.e. must hold the server's write gate. Conservative:
   *  only plain reads, transaction control and ATTACH/DETACH are known not to write. */
  writes: boolean;
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DIGIT = /[0-9]/;
const MAIN_VERBS = new Set(['SELECT', 'VALUES', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE']);
const NO_WRITE = new Set(['SELECT', 'VALUES', 'EXPLAIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'ATTACH', 'DETACH']);

class Builder {
  start: number;
  hasTokens = false;
  words: string[] = [];
  /** Words outside parentheses, in order (used to find the verb after WITH ...). */
  topWords: string[] = [];
  slots: (string | null)[] = [];
  private named = new Map<string, number>();
  private maxIndex = 0;
  depth = 0;
  hasAssign = false;
  private trigger = false;
  private sawBegin = false;
  private caseDepth = 0;
  private bodyEnded = false;

  constructor(start: number) {
    this.start = start;
  }

  word(w: string): void {
    this.hasTokens = true;
    this.words.push(w);
    if (this.depth === 0) this.topWords.push(w);
    const [w0, w1, w2] = this.words;
    if (this.words.length <= 3 && w0 === 'CREATE' && (w1 === 'TRIGGER' || ((w1 === 'TEMP' || w1 === 'TEMPORARY') && w2 === 'TRIGGER'))) {
      this.trigger = true;
    }
    if (!this.trigger) return;
    if (w === 'CASE') this.caseDepth++;
    else if (w === 'BEGIN' && this.caseDepth === 0) this.sawBegin = true;
    else if (w === 'END') {
      if (this.caseDepth > 0) this.caseDepth--;
      else if (this.sawBegin) this.bodyEnded = true;
    }
  }

  param(name: string | null): void {
    this.hasTokens = true;
    if (name === null) {
      this.slots[this.maxIndex++] = null;
    } else if (name.startsWith('?')) {
      const index = Number(name.slice(1));
      if (!Number.isInteger(index) || index < 1 || index > 32766) return; // SQLite rejects it at prepare
      this.slots[index - 1] = name;
      this.maxIndex = Math.max(this.maxIndex, index);
    } else if (!this.named.has(name)) {
      this.named.set(name, ++this.maxIndex);
      this.slots[this.maxIndex - 1] = name;
    }
  }

  /** Does a `;` here end the statement? Not inside a trigger body. */
  endsAtSemicolon(): boolean {
    return !this.trigger || !this.sawBegin || this.bodyEnded;
  }

  finish(sql: string, end: number): SqlStatement {
    const keyword = this.words[0] ?? '';
    let verb = keyword;
    if (keyword === 'WITH') verb = this.topWords.find((w) => MAIN_VERBS.has(w)) ?? '';
    const isInsert = verb === 'INSERT' || verb === 'REPLACE';
    const isIud = isInsert || verb === 'UPDATE' || verb === 'DELETE';
    let writes: boolean;
    if (keyword === 'WITH') writes = isIud || verb === '';
    else if (keyword === 'BEGIN') writes = this.words[1] === 'IMMEDIATE' || this.words[1] === 'EXCLUSIVE';
    else if (keyword === 'PRAGMA') writes = this.hasAssign; // `PRAGMA x = y` / `PRAGMA x(y)` may write
    else writes = !NO_WRITE.has(keyword);
    const params: (string | null)[] = [];
    for (let i = 0; i < this.maxIndex; i++) params.push(this.slots[i] ?? null);
    return { text: sql.slice(this.start, end), keyword, params, isInsert, isIud, isExplain: keyword === 'EXPLAIN', writes };
  }
}

function skipQuoted(sql: string, i: number, close: string): number {
  // Doubling the quote escapes it: 'it''s'.
  for (let j = i + 1; j < sql.length; j++) {
    if (sql[j] === close) {
      if (sql[j + 1] === close && close !== ']') j++;
      else return j + 1;
    }
  }
  return sql.length;
}

/** Splits SQL text into its non-empty statements. */
export function splitSql(sql: string): SqlStatement[] {
  const out: SqlStatement[] = [];
  const n = sql.length;
  let cur = new Builder(0);
  let i = 0;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1] ?? '';
    if (c === ';') {
      i++;
      if (cur.endsAtSemicolon()) {
        if (cur.hasTokens) out.push(cur.finish(sql, i));
        cur = new Builder(i);
      }
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
    } else if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else if (c === '/' && next === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close === -1 ? n : close + 2;
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      cur.hasTokens = true;
      i = skipQuoted(sql, i, c === '[' ? ']' : c);
    } else if (c === '?') {
      let j = i + 1;
      while (j < n && DIGIT.test(sql[j] as string)) j++;
      cur.param(j > i + 1 ? sql.slice(i, j) : null);
      i = j;
    } else if ((c === ':' || c === '@' || c === '$') && WORD_CHAR.test(next)) {
      let j = i + 1;
      while (j < n && WORD_CHAR.test(sql[j] as string)) j++;
      cur.param(sql.slice(i, j));
      i = j;
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD_CHAR.test(sql[j] as string)) j++;
      cur.word(sql.slice(i, j).toUpperCase());
      i = j;
    } else if (DIGIT.test(c) || (c === '.' && DIGIT.test(next))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j] as string)) j++;
      cur.hasTokens = true;
      i = j;
    } else {
      cur.hasTokens = true;
      if (c === '(') {
        if (cur.words[0] === 'PRAGMA') cur.hasAssign = true;
        cur.depth++;
      } else if (c === ')') cur.depth = Math.max(0, cur.depth - 1);
      else if (c === '=') cur.hasAssign = true;
      i++;
    }
  }
  if (cur.hasTokens) out.push(cur.finish(sql, n));
  return out;
}
