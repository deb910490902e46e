// The CSV parser against hand-written RFC 4180 cases: quoting, doubled quotes, CRLF/LF, line breaks
// inside quotes, a byte-order mark, and errors that name the file and line.

import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../datasets/csv.js';
import { DatasetError } from '../../datasets/errors.js';
import { VitgpuError } from '../../engine/errors.js';

function fields(text: string): string[][] {
  return parseCsv(text, 'x.csv').rows.map((r) => r.fields);
}

describe('parseCsv', () => {
  it('reads a plain table with line numbers', () => {
    const t = parseCsv('a,b,c\n1,2,3\n4,5,6\n', 'x.csv');
    expect(t.header).toEqual(['a', 'b', 'c']);
    expect(t.rows).toEqual([
      { line: 2, fields: ['1', '2', '3'] },
      { line: 3, fields: ['4', '5', '6'] },
    ]);
  });

  it('handles quoted commas, doubled quotes and empty fields', () => {
    expect(fields('a,b,c\n"x, y","say ""hi""",\n"",,"z"')).toEqual([
      ['x, y', 'say "hi"', ''],
      ['', '', 'z'],
    ]);
  });

  it('handles CRLF, LF, a missing final newline and blank lines', () => {
    const t = parseCsv('a,b\r\n1,2\r\n\r\n3,4\n\n5,6', 'x.csv');
    expect(t.rows.map((r) => r.fields)).toEqual([
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
    expect(t.rows.map((r) => r.line)).toEqual([2, 4, 6]);
  });

  it('keeps line breaks inside quotes and counts them for later line numbers', () => {
    const t = parseCsv('a,b\n"line one\nline two",1\r\n"x\r\ny",2\n3,4\n', 'x.csv');
    expect(t.rows.map((r) => r.fields)).toEqual([
      ['line one\nline two', '1'],
      ['x\r\ny', '2'],
      ['3', '4'],
    ]);
    expect(t.rows.map((r) => r.line)).toEqual([2, 4, 6]);
  });

  it('drops a UTF-8 byte-order mark and trims header names', () => {
    const t = parseCsv('\ufeff Path , split\nimg.png,train\n', 'x.csv');
    expect(t.header).toEqual(['Path', 'split']);
  });

  it('accepts the unnamed index column pandas writes first', () => {
    expect(parseCsv(',a\n0,x\n', 'x.csv').header).toEqual(['', 'a']);
  });

  it('names the file and line of an unclosed quote', () => {
    expect(() => parseCsv('a,b\n1,2\n"open,3\n4,5\n', 'list.csv')).toThrow(/^list\.csv line 3: quoted field is never closed$/);
  });

  it('names the file and line of a record with the wrong number of fields', () => {
    const err = (() => {
      try {
        parseCsv('a,b\n1,2\n3\n', 'list.csv');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DatasetError);
    expect(err).toBeInstanceOf(VitgpuError);
    expect((err as DatasetError).message).toBe('list.csv line 3: has 1 field, the header has 2');
    expect((err as DatasetError).line).toBe(3);
  });

  it('rejects text after a closing quote, an empty file and duplicate header names', () => {
    expect(() => parseCsv('a,b\n"x"y,2\n', 'l.csv')).toThrow(/l\.csv line 2: unexpected "y" after a closing quote/);
    expect(() => parseCsv('', 'l.csv')).toThrow(/l\.csv: empty CSV file/);
    expect(() => parseCsv('a,b,a\n1,2,3\n', 'l.csv')).toThrow(/l\.csv line 1: header names column "a" twice/);
  });
});
