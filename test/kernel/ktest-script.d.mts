// Types for ktest-script.mjs (plain JavaScript, see there).
export declare function ktestScript(o: {
  files: string[]
  work: string
  command: string[]
  timeoutS: number
  killAfterS?: number
  lockFile?: string
}): string
