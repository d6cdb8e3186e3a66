// Types for the parts of ts-hooks.mjs that the host side uses.
export declare function transpile(file: string, ts?: unknown): string
/** Transpile every .ts/.mts under root (not node_modules, dist, ...) into dir; returns the count. */
export declare function transpileTree(root: string, dir: string, ts?: unknown): number
