// A workload's output, bytes → lines. Whatever the workload writes is taken as it comes: UTF-8
// decoded in streaming mode (a character split across reads stays whole; bytes that are not
// UTF-8 become U+FFFD), split at \n (a \r before it goes too), control characters kept. A line
// longer than LOG_MAX_LINE_CHARS is cut into pieces, all but the last marked partial, and cut
// as it arrives: a workload that never writes \n costs a few KiB here, not its whole output.
import { LOG_MAX_LINE_CHARS } from '../../../src/contracts/runner.ts';

export interface LinePiece {
  text: string;
  /** Cut at the limit: the line goes on in the next piece. */
  partial: boolean;
  /** The piece starts a line (docker's timestamp prefix is there). */
  first: boolean;
}

export class LineSplitter {
  // ignoreBOM: a BOM the workload writes is output like any other character.
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private pending = '';
  /** Pieces of the current line were already emitted. */
  private midLine = false;
  private readonly emit: (piece: LinePiece) => void;
  private readonly max: number;

  constructor(emit: (piece: LinePiece) => void, max = LOG_MAX_LINE_CHARS) {
    this.emit = emit;
    this.max = max;
  }

  write(chunk: Uint8Array): void {
    this.take(this.decoder.decode(chunk, { stream: true }));
  }

  /** The stream ended: what is left is the last line (an incomplete character is U+FFFD). */
  end(): void {
    this.take(this.decoder.decode());
    if (this.pending.length > 0 || this.midLine) this.line(this.pending);
    this.pending = '';
  }

  private take(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      let line = this.pending + text.slice(start, nl);
      this.pending = '';
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.line(line);
    }
    this.pending += text.slice(start);
    // One more than the limit may wait: it could be the \r of a \r\n still to come.
    while (this.pending.length > this.max + 1) {
      const n = cutAt(this.pending, this.max);
      this.piece(this.pending.slice(0, n), true);
      this.pending = this.pending.slice(n);
    }
  }

  private line(text: string): void {
    while (text.length > this.max) {
      const n = cutAt(text, this.max);
      this.piece(text.slice(0, n), true);
      text = text.slice(n);
    }
    this.piece(text, false);
  }

  private piece(text: string, partial: boolean): void {
    this.emit({ text, partial, first: !this.midLine });
    this.midLine = partial;
  }
}

/** `max`, or one less so a surrogate pair (an emoji) is not cut in two. */
function cutAt(text: string, max: number): number {
  const code = text.charCodeAt(max - 1);
  return code >= 0xd800 && code <= 0xdbff && max > 1 ? max - 1 : max;
}
