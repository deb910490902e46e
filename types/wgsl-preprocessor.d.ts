declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /** Template tag resolving `#if ${cond}` / `#elif ${cond}` / `#else` / `#endif` blocks. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
