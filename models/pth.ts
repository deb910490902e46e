// PyTorch checkpoints (`torch.save`, `.pth` / `.pt`), read without Python, browser-safe. The file is
// a ZIP archive: `ARCHIVE/data.pkl` pickles the object (a state dict, perhaps nested under `model`,
// `state_dict` or `teacher`), and every tensor storage is a stored entry `ARCHIVE/data/KEY`. data.pkl
// is read with the restricted unpickler (models/pickle.ts), which accepts only the constructors below
// and never executes anything. Each tensor becomes a byte range in the archive, so the weights are
// read tensor by tensor with the same reader as safetensors (readTensorF32).

import type { ByteSource, Dtype, SafetensorsHeader, TensorInfo } from './safetensors.js';
import { PickleError, PyDict, PyTuple, unpickle, type GlobalConstructor } from './pickle.js';
import { readStoredEntry, readZipDirectory, storedEntryRange, ZipError } from './zip.js';

export { PickleError, ZipError };

/** torch storage classes → dtype (the markers data.pkl names in persistent ids). */
const STORAGE_DTYPES: Readonly<Record<string, Dtype>> = {
  FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', DoubleStorage: 'F64',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};
const ITEM_SIZE: Readonly<Record<string, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Keys under which training scripts nest the weights, tried in this order when the top level is not a state dict. */
export const NESTED_KEYS = ['state_dict', 'model', 'teacher', 'module', 'model_ema', 'state_dict_ema', 'student', 'net', 'network'];

/** data.pkl of a ViT-B is a few hundred KB; this bounds a damaged or hostile one. */
const MAX_PICKLE_BYTES = 256 * 2 ** 20;

class Storage {
  constructor(readonly key: string, readonly dtype: Dtype, readonly numel: number) {}
}

class TorchTensor {
  constructor(readonly storage: Storage, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function intTuple(v: unknown, what: string, source: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (!items || !items.every(isInt)) throw new PickleError(source, `${what} is not a tuple of non-negative integers`);
  return items as number[];
}

function rebuildTensor(args: unknown[], source: string): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof Storage)) throw new PickleError(source, 'a tensor without a storage');
  if (!isInt(offset)) throw new PickleError(source, 'a tensor with a bad storage offset');
  const shape = intTuple(size, 'a tensor size', source);
  const strides = intTuple(stride, 'a tensor stride', source);
  if (shape.length !== strides.length) throw new PickleError(source, `a tensor of shape [${shape}] with ${strides.length} strides`);
  return new TorchTensor(storage, offset, shape, strides);
}

const GLOBALS: Readonly<Record<string, GlobalConstructor>> = {
  'collections.OrderedDict': (args, source) => {
    const d = new PyDict();
    const pairs = args[0];
    if (pairs === undefined) return d;
    const list = pairs instanceof PyTuple ? pairs.items : Array.isArray(pairs) ? pairs : null;
    if (!list) throw new PickleError(source, 'OrderedDict from something that is not a list of pairs');
    for (const p of list) {
      if (!(p instanceof PyTuple) || p.items.length !== 2) throw new PickleError(source, 'OrderedDict item that is not a pair');
      d.map.set(p.items[0], p.items[1]);
    }
    return d;
  },
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': (args, source) => {
    if (!(args[0] instanceof TorchTensor)) throw new PickleError(source, 'a parameter without a tensor');
    return args[0];
  },
  'torch._utils._rebuild_parameter_with_state': (args, source) => {
    if (!(args[0] instanceof TorchTensor)) throw new PickleError(source, 'a parameter without a tensor');
    return args[0];
  },
  'torch.Size': (args, source) => new PyTuple(intTuple(args[0], 'torch.Size', source)),
  // Protocol 2 pickles Python bytes as _codecs.encode(text, 'latin1'): a pure conversion.
  '_codecs.encode': (args, source) => {
    const [text, encoding] = args;
    if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) throw new PickleError(source, '_codecs.encode other than text to latin1');
    return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  },
};
const MARKERS = Object.keys(STORAGE_DTYPES).map((n) => `torch.${n}`);

/** True when the bytes start like a legacy (before PyTorch 1.6) torch.save file: a pickled magic number. */
export function isLegacyTorch(head: Uint8Array): boolean {
  // PROTO 2, LONG1 10 bytes: 0x1950a86a20f9469cfc6c little-endian.
  const magic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

function isRowMajor(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i];
  }
  return true;
}

/** The state dict inside the unpickled object, and where it was found. */
function stateDict(root: unknown, source: string): { dict: PyDict; key: string | null } {
  const hasTensors = (d: unknown): d is PyDict => d instanceof PyDict && [...d.map.values()].some((v) => v instanceof TorchTensor);
  if (hasTensors(root) && [...root.map.values()].every((v) => v instanceof TorchTensor || !(v instanceof PyDict))) return { dict: root, key: null };
  if (root instanceof PyDict) {
    const top: PyDict = root;
    for (const k of NESTED_KEYS) if (hasTensors(top.map.get(k))) return { dict: top.map.get(k) as PyDict, key: k };
    if ([...top.map.values()].some((v) => v instanceof TorchTensor)) return { dict: top, key: null };
    const keys = [...top.map.keys()].map(String).slice(0, 12).join(', ');
    throw new PickleError(source, `no state dict of tensors found (top-level keys: ${keys}; looked under ${NESTED_KEYS.join(', ')})`);
  }
  throw new PickleError(source, 'the checkpoint holds no dict of tensors');
}

/**
 * The tensors of a PyTorch zip checkpoint as byte ranges in the file (a header readTensorF32 reads
 * from), with `pth_state_key` in the metadata when the state dict was nested.
 */
export async function readPthHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const entries = await readZipDirectory(src);
  const pkls = [...entries.keys()].filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkls.length !== 1) throw new ZipError(src.name, pkls.length ? `${pkls.length} data.pkl entries` : 'a ZIP archive without data.pkl: not a PyTorch checkpoint');
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(await readStoredEntry(src, order, 16)).trim();
    if (text !== 'little') throw new ZipError(src.name, `tensors stored ${text}-endian; only little-endian checkpoints are read`);
  }
  const pkl = await readStoredEntry(src, entries.get(pkls[0])!, MAX_PICKLE_BYTES);
  const storages = new Map<string, Storage>();
  const root = unpickle(pkl, {
    globals: GLOBALS,
    markers: MARKERS,
    source: `${src.name} (data.pkl)`,
    persistentLoad: (pid) => {
      const [tag, type, key, , numel] = pid instanceof PyTuple ? pid.items : [];
      const typeName = (type as { name?: string } | undefined)?.name ?? '';
      if (tag !== 'storage' || typeof key !== 'string' || !isInt(numel) || !(typeName in STORAGE_DTYPES)) {
        throw new PickleError(src.name, `unexpected persistent id ${JSON.stringify(pid instanceof PyTuple ? pid.items.map(String) : String(pid))}`);
      }
      const known = storages.get(key);
      if (known) return known;
      const s = new Storage(key, STORAGE_DTYPES[typeName], numel as number);
      storages.set(key, s);
      return s;
    },
  });
  const { dict, key } = stateDict(root, src.name);
  const tensors = new Map<string, TensorInfo>();
  for (const [name, value] of dict.map) {
    if (!(value instanceof TorchTensor)) continue; // counters, hyper-parameters: not weights
    if (typeof name !== 'string') throw new PickleError(src.name, 'a state dict key that is not a string');
    const { storage, offset, shape, stride } = value;
    const item = ITEM_SIZE[storage.dtype];
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel > 0 && !isRowMajor(shape, stride)) {
      throw new PickleError(src.name, `tensor "${name}" is stored as a non-contiguous view (stride [${stride}]); re-save it with .contiguous() tensors`);
    }
    if (offset + numel > storage.numel) throw new PickleError(src.name, `tensor "${name}" reaches past its storage (${offset} + ${numel} > ${storage.numel})`);
    const entry = entries.get(`${prefix}data/${storage.key}`);
    if (!entry) throw new ZipError(src.name, `tensor "${name}": storage data/${storage.key} is missing from the archive`);
    const range = await storedEntryRange(src, entry);
    if (range.end - range.begin < storage.numel * item) {
      throw new ZipError(src.name, `storage data/${storage.key} holds ${range.end - range.begin} bytes, fewer than its ${storage.numel} ${storage.dtype} values`);
    }
    const begin = range.begin + offset * item;
    tensors.set(name, { name, dtype: storage.dtype, shape, begin, end: begin + numel * item });
  }
  if (tensors.size === 0) throw new PickleError(src.name, 'the state dict holds no tensors');
  return { headerSize: 0, dataStart: 0, tensors, metadata: key ? { pth_state_key: key } : {} };
}
