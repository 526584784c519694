import { describe, expect, it } from 'vitest';
import { LOG_MAX_LINE_CHARS } from '../../../src/contracts/runner.ts';
import { LineSplitter, type LinePiece } from '../../../runner/src/logs/lines.ts';

function split(chunks: (string | Uint8Array)[], max?: number): LinePiece[] {
  const pieces: LinePiece[] = [];
  const splitter = new LineSplitter((p) => pieces.push(p), max);
  for (const chunk of chunks) splitter.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  splitter.end();
  return pieces;
}
const texts = (pieces: LinePiece[]) => pieces.map((p) => p.text);

describe('LineSplitter', () => {
  it('splits at \\n, takes the \\r of \\r\\n off, and keeps a last line without a line break', () => {
    expect(split(['a\nb\r\n\nc'])).toEqual([
      { text: 'a', partial: false, first: true },
      { text: 'b', partial: false, first: true },
      { text: '', partial: false, first: true },
      { text: 'c', partial: false, first: true },
    ]);
    expect(split(['a\r', '\nb\r\n'])).toEqual([expect.objectContaining({ text: 'a' }), expect.objectContaining({ text: 'b' })]);
    expect(split([])).toEqual([]);
  });

  it('joins a line split across chunks, a multi-byte character included', () => {
    const euro = Buffer.from('€'); // e2 82 ac
    expect(texts(split(['hel', 'lo wor', Buffer.from([0x6c, 0x64, 0x20, euro[0]!]), euro.subarray(1), '\n']))).toEqual(['hello world €']);
    const emoji = Buffer.from('😀\n');
    expect(texts(split([...emoji].map((b) => Uint8Array.of(b))))).toEqual(['😀']);
  });

  it('turns bytes that are not UTF-8 into U+FFFD, and a character cut short at the end too', () => {
    expect(texts(split([Uint8Array.of(0x61, 0xff, 0x62, 0xc3, 0x28, 0x0a, 0xed, 0xa0, 0x80, 0x0a)]))).toEqual(['a\ufffdb\ufffd(', '\ufffd\ufffd\ufffd']);
    expect(texts(split([Uint8Array.of(0x61, 0xe2, 0x82)]))).toEqual(['a\ufffd']);
  });

  it('keeps control characters: escaping them is for whoever shows them', () => {
    const text = 'tab\there \x1b[31mred\x1b[0m bell\x07 nul\x00 cr\rmid \x7f';
    expect(texts(split([`${text}\n`]))).toEqual([text]);
  });

  it('cuts a line longer than LOG_MAX_LINE_CHARS into pieces, all but the last partial', () => {
    const long = 'x'.repeat(LOG_MAX_LINE_CHARS * 2 + 5);
    expect(split([`${long}\nnext\n`]).map((p) => [p.text.length, p.partial, p.first])).toEqual([
      [LOG_MAX_LINE_CHARS, true, true],
      [LOG_MAX_LINE_CHARS, true, false],
      [5, false, false],
      [4, false, true],
    ]);
    expect(split([`${'y'.repeat(LOG_MAX_LINE_CHARS)}\r\n`])).toEqual([{ text: 'y'.repeat(LOG_MAX_LINE_CHARS), partial: false, first: true }]);
    expect(split([`${'y'.repeat(LOG_MAX_LINE_CHARS + 1)}\n`]).map((p) => [p.text.length, p.partial])).toEqual([[LOG_MAX_LINE_CHARS, true], [1, false]]);
  });

  it('cuts as the bytes arrive, so a line without end costs little memory, and never inside a surrogate pair', () => {
    const pieces: LinePiece[] = [];
    const splitter = new LineSplitter((p) => pieces.push(p), 10);
    for (let i = 0; i < 1000; i++) splitter.write(Buffer.from('abcdefghij'));
    expect(pieces).toHaveLength(999); // the last 10 wait: the line may still end with \r\n
    expect(pieces.every((p) => p.partial && p.text === 'abcdefghij')).toBe(true);
    splitter.write(Buffer.from('\n'));
    expect(pieces.at(-1)).toEqual({ text: 'abcdefghij', partial: false, first: false });

    expect(texts(split(['123456789😀z\n'], 10))).toEqual(['123456789', '😀z']);
  });

  it('closes a line whose last piece was cut when the stream ends', () => {
    expect(split(['abcdefghijkl'], 5).map((p) => [p.text, p.partial])).toEqual([['abcde', true], ['fghij', true], ['kl', false]]);
  });

  it('gives the same lines however hostile bytes are chunked: every piece within the limit, no pair cut in two', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const alphabet = [0x0a, 0x0d, 0x00, 0x1b, 0x41, 0xff, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0];
    for (let round = 0; round < 200; round++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 400) }, () => alphabet[Math.floor(random() * alphabet.length)]!);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(random() * 40);
        chunks.push(bytes.subarray(at, at + n));
        at += n;
      }
      const pieces = split(chunks, 16);
      const text = new TextDecoder().decode(bytes);
      // Lines ended by \n lose a \r before it; a last line without one is kept as it is.
      const expected = text.split('\n').map((l, i, all) => (i < all.length - 1 ? l.replace(/\r$/, '') : l));
      if (text.endsWith('\n') || text === '') expected.pop();
      const joined: string[] = [];
      let current: string | null = null;
      for (const p of pieces) {
        expect(p.text.length).toBeLessThanOrEqual(16);
        expect(p.text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
        current = (current ?? '') + p.text;
        if (!p.partial) {
          joined.push(current);
          current = null;
        }
      }
      expect(current).toBeNull();
      expect(joined).toEqual(expected);
    }
  });
});
