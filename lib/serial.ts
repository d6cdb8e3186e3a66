// Jobs that must not overlap, run one after another in call order; a failed
// job does not stop the ones after it. One mechanism for the proxiers' kernel
// work, the manifest source's reloads and the libiptc jobs of each family.
export class Serial {
  #tail: Promise<unknown> = Promise.resolve()

  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(job, job)
    this.#tail = next.catch(() => undefined)
    return next
  }

  /** Resolves when every job queued so far has settled. */
  async idle(): Promise<void> {
    await this.#tail
  }
}
