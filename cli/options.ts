// Parsing and checking option values; every error names the option.

import { VitgpuError } from '../engine/errors.js';

export function positiveInt(v: string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new VitgpuError(`${option} must be a positive integer, got "${v}"`);
  return n;
}

export function nonNegativeInt(v: string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new VitgpuError(`${option} must be a non-negative integer, got "${v}"`);
  return n;
}

export function nonNegativeNumber(v: string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new VitgpuError(`${option} must be a non-negative number, got "${v}"`);
  return n;
}

export function positiveNumber(v: string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new VitgpuError(`${option} must be a positive number, got "${v}"`);
  return n;
}

/** A fraction in (0, 1]. */
export function fraction(v: string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new VitgpuError(`${option} must be a fraction in (0, 1], got "${v}"`);
  return n;
}

export function oneOf<T extends string>(v: string | undefined, option: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new VitgpuError(`${option} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

export function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  return items.length ? items : undefined;
}
