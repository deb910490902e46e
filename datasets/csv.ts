// RFC 4180 CSV, browser-safe: quoted fields may hold commas, doubled quotes ("") and line breaks;
// records end with CRLF or LF; a UTF-8 byte-order mark is dropped. Each record keeps the line it
// starts on, so errors further down (a bad split value, say) can point into the file.

import { DatasetError } from './errors.js';

export interface CsvRecord {
  /** 1-based line of the file where the record starts (the header is line 1 in a plain file). */
  line: number;
  fields: string[];
}

export interface CsvTable {
  header: string[];
  /** Data records; blank lines are skipped. */
  rows: CsvRecord[];
}

/**
 * Parses CSV text. Every record must have as many fields as the header. Blank lines are skipped.
 * Throws DatasetError naming `fileName` and the line for an unclosed quote, text after a closing
 * quote, a wrong field count, an empty file or an empty/duplicated header name.
 */
export function parseCsv(text: string, fileName: string): CsvTable {
  const records = parseRecords(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, fileName);
  if (records.length === 0) throw new DatasetError(fileName, 'empty CSV file (no header line)');
  const [head, ...rows] = records;
  const header = head.fields.map((h) => h.trim());
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    if (name === '' && header.length > 1) {
      // pandas writes an unnamed index column first; tolerate that one, but no others.
      if (i === 0) return;
      throw new DatasetError(fileName, `header column ${i + 1} has no name`, { line: head.line });
    }
    if (seen.has(name)) throw new DatasetError(fileName, `header names column "${name}" twice (columns ${seen.get(name)! + 1} and ${i + 1})`, { line: head.line, column: name });
    seen.set(name, i);
  });
  for (const r of rows) {
    if (r.fields.length !== header.length) {
      throw new DatasetError(fileName, `has ${r.fields.length} field${r.fields.length === 1 ? '' : 's'}, the header has ${header.length}`, { line: r.line });
    }
  }
  return { header, rows };
}

function parseRecords(text: string, fileName: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    // A line holding nothing at all is skipped (a trailing newline, or blank lines between records).
    if (text[i] === '\n' || (text[i] === '\r' && text[i + 1] === '\n')) {
      i += text[i] === '\r' ? 2 : 1;
      line++;
      continue;
    }
    const fields: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new DatasetError(fileName, 'quoted field is never closed', { line: quoteLine });
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          throw new DatasetError(fileName, `unexpected ${JSON.stringify(text[i])} after a closing quote`, { line });
        }
      } else {
        const from = i;
        while (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) i++;
        field = text.slice(from, i);
      }
      fields.push(field);
      if (i < n && text[i] === ',') {
        i++;
        continue;
      }
      // End of record: newline or end of text.
      if (i < n) {
        i += text[i] === '\r' ? 2 : 1;
        line++;
      }
      break;
    }
    records.push({ line: start, fields });
  }
  return records;
}
