// A restricted Python unpickler, browser-safe: reads the data a PyTorch checkpoint's data.pkl holds
// (dicts, OrderedDicts, lists, tuples, strings, numbers, and tensors through their persistent storage
// ids) and nothing else. Pickles can name any Python callable (GLOBAL) and call it (REDUCE); this
// reader never calls anything: a callable is only accepted when the caller registered a pure data
// constructor for its exact module and name, and any other global (`os.system`, `builtins.eval`, ...)
// is refused with an error that names it. Every length is checked against the bytes left, so a damaged
// or hostile pickle fails with a message instead of allocating or looping.

import { VitgpuError } from '../engine/errors.js';

export class PickleError extends VitgpuError {
  constructor(readonly source: string, problem: string) {
    super(`${source}: ${problem}`);
  }
}

/** A Python tuple (kept apart from lists so constructors can tell them apart). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** A Python dict or OrderedDict: insertion-ordered, keys of any pickled type (strings in checkpoints). */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
}

/** A global that was allowed (by module and name), before it is called. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Builds a value from a call's arguments, as the named callable would, without running Python. */
export type GlobalConstructor = (args: unknown[], source: string) => unknown;

export interface UnpickleOptions {
  /** Allowed callables by `module.name`. */
  globals: Readonly<Record<string, GlobalConstructor>>;
  /** Globals allowed only as values (never called), e.g. storage type markers. */
  markers?: readonly string[];
  /** Resolves a persistent id (PyTorch's storage references). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Name for messages. */
  source: string;
}

const MAX_MEMO = 10_000_000;
const MAX_STACK = 1_000_000;

/** Unpickles `bytes` (protocols 0–5, the opcodes data needs) under the restrictions above. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  const src = opts.source;
  const fail = (problem: string): never => {
    throw new PickleError(src, problem);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number, what: string) => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) fail(`${what} at byte ${pos} runs past the end of the pickle (truncated or damaged)`);
  };
  const u8 = () => (need(1, 'argument'), bytes[pos++]);
  const u16 = () => (need(2, 'argument'), (pos += 2), dv.getUint16(pos - 2, true));
  const i32 = () => (need(4, 'argument'), (pos += 4), dv.getInt32(pos - 4, true));
  const u32 = () => (need(4, 'argument'), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = () => {
    need(8, 'argument');
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} at byte ${pos - 8} is larger than the pickle`);
    return Number(v);
  };
  const take = (n: number, what: string) => {
    need(n, what);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`unterminated text argument at byte ${pos}`);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const push = (v: unknown) => {
    if (stack.length >= MAX_STACK) fail('stack too deep');
    stack.push(v);
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail(`stack underflow at byte ${pos}`);
    return stack.pop();
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail(`no MARK to pop at byte ${pos}`);
    return stack.splice(m!);
  };
  const top = () => {
    if (stack.length === 0) fail(`empty stack at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const setMemo = (k: number, v: unknown) => {
    if (memo.size >= MAX_MEMO && !memo.has(k)) fail('memo too large');
    memo.set(k, v);
  };
  const getMemo = (k: number) => {
    if (!memo.has(k)) fail(`memo key ${k} used before it was set`);
    return memo.get(k);
  };
  const global = (module: string, name: string) => {
    const q = `${module}.${name}`;
    if (!(q in opts.globals) && !opts.markers?.includes(q)) {
      fail(`refusing the Python global ${q}: a checkpoint needs only tensors and plain containers, and nothing in a pickle is ever executed`);
    }
    return new PyGlobal(module, name);
  };
  const call = (fn: unknown, args: unknown, how: string): unknown => {
    if (!(fn instanceof PyGlobal)) fail(`${how} of something that is not an allowed callable, at byte ${pos}`);
    const ctor = opts.globals[(fn as PyGlobal).qualified];
    if (!ctor) fail(`refusing to call ${(fn as PyGlobal).qualified}: it is allowed only as a value`);
    if (!(args instanceof PyTuple)) fail(`${how} of ${(fn as PyGlobal).qualified} without an argument tuple`);
    return ctor((args as PyTuple).items, src);
  };
  const setItems = (d: unknown, items: unknown[]) => {
    if (!(d instanceof PyDict)) fail(`SETITEMS on a non-dict at byte ${pos}`);
    if (items.length % 2) fail(`odd number of dict items at byte ${pos}`);
    for (let i = 0; i < items.length; i += 2) (d as PyDict).map.set(items[i], items[i + 1]);
  };

  while (true) {
    if (pos >= bytes.length) fail('the pickle ends without STOP (truncated)');
    const op = bytes[pos++];
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME (length only)
      case 0x2e: { // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x8f: push(new Set()); break; // EMPTY_SET
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: case 0x8b: { // LONG1, LONG4: little-endian two's complement
        const n = op === 0x8a ? u8() : u32();
        const b = take(n, 'LONG');
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x49: { // INT (text; I01 / I00 are booleans)
        const s = line();
        if (s === '01' || s === '00') push(s === '01');
        else if (/^-?\d+$/.test(s)) push(Number(s));
        else fail(`bad INT "${s}"`);
        break;
      }
      case 0x4c: { // LONG (text)
        const s = line().replace(/L$/, '');
        if (!/^-?\d+$/.test(s)) fail(`bad LONG "${s}"`);
        push(Number(s));
        break;
      }
      case 0x47: need(8, 'BINFLOAT'); push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x58: push(decodeUtf8(take(u32(), 'BINUNICODE'))); break;
      case 0x8c: push(decodeUtf8(take(u8(), 'SHORT_BINUNICODE'))); break;
      case 0x8d: push(decodeUtf8(take(u64(), 'BINUNICODE8'))); break;
      case 0x55: push(latin1.decode(take(u8(), 'SHORT_BINSTRING'))); break;
      case 0x54: push(latin1.decode(take(u32(), 'BINSTRING'))); break;
      case 0x43: push(take(u8(), 'SHORT_BINBYTES').slice()); break;
      case 0x42: push(take(u32(), 'BINBYTES').slice()); break;
      case 0x8e: push(take(u64(), 'BINBYTES8').slice()); break;
      case 0x74: push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: push(new PyTuple([pop()])); break;
      case 0x86: { const b = pop(); const a = pop(); push(new PyTuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(new PyTuple([a, b, c])); break; }
      case 0x6c: push(popMark()); break; // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to a non-list'); (l as unknown[]).push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS to a non-list'); (l as unknown[]).push(...items); break; }
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) fail('ADDITEMS to a non-set'); for (const i of items) (s as Set<unknown>).add(i); break; }
      case 0x91: push(new Set(popMark())); break; // FROZENSET
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x71: setMemo(u8(), top()); break; // BINPUT
      case 0x72: setMemo(u32(), top()); break; // LONG_BINPUT
      case 0x70: setMemo(Number(line()), top()); break; // PUT (text)
      case 0x94: setMemo(memo.size, top()); break; // MEMOIZE
      case 0x68: push(getMemo(u8())); break; // BINGET
      case 0x6a: push(getMemo(u32())); break; // LONG_BINGET
      case 0x67: push(getMemo(Number(line()))); break; // GET (text)
      case 0x63: { const module = line(); const name = line(); push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL with non-string names');
        push(global(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); push(call(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x62: { // BUILD: only a dict's own state (an OrderedDict with attributes) is accepted
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict) || !(state === null || state instanceof PyDict)) fail(`BUILD (setting an object's state) is not allowed here, at byte ${pos}`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('a persistent id, but this pickle should have none');
        push(opts.persistentLoad!(pid));
        break;
      }
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1} is not allowed in a checkpoint (or the pickle is damaged)`);
    }
  }

  function decodeUtf8(b: Uint8Array): string {
    try {
      return utf8.decode(b);
    } catch {
      return fail(`invalid UTF-8 string at byte ${pos - b.length}`);
    }
  }
}
