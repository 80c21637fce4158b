/**
 * How much of its input a piece of code reads, in characters, as a measure of its work that no
 * machine's speed changes: while `run` runs, each `charCodeAt` counts one, and the string
 * methods that scan or copy (`indexOf`, `slice`, `startsWith`, `includes`, `replace`,
 * `replaceAll`, and `RegExp#test`) count the characters they cover. Work that grows
 * faster than its input (a rescan per line, per token) shows as many reads per character.
 */
export async function charactersRead<T>(run: () => T | Promise<T>): Promise<number> {
  let reads = 0;
  const strings = String.prototype;
  const regexps = RegExp.prototype;
  /* eslint-disable @typescript-eslint/unbound-method -- each is called on its string with
     .call, and put back on the prototype after */
  const originals = {
    charCodeAt: strings.charCodeAt,
    indexOf: strings.indexOf,
    slice: strings.slice,
    startsWith: strings.startsWith,
    includes: strings.includes,
    replace: strings.replace,
    replaceAll: strings.replaceAll,
    test: regexps.test,
  };
  /* eslint-enable @typescript-eslint/unbound-method */
  strings.charCodeAt = function (this: string, index: number) {
    reads += 1;
    return originals.charCodeAt.call(this, index);
  };
  strings.indexOf = function (this: string, search: string, from = 0) {
    const found = originals.indexOf.call(this, search, from);
    reads += (found === -1 ? this.length : found + search.length) - Math.max(0, from);
    return found;
  };
  strings.slice = function (this: string, start?: number, end?: number) {
    const sliced = originals.slice.call(this, start, end);
    reads += sliced.length;
    return sliced;
  };
  strings.startsWith = function (this: string, search: string, position?: number) {
    reads += search.length;
    return originals.startsWith.call(this, search, position);
  };
  strings.includes = function (this: string, search: string, position?: number) {
    reads += this.length;
    return originals.includes.call(this, search, position);
  };
  strings.replace = function (this: string, ...args: Parameters<string["replace"]>) {
    reads += this.length;
    return originals.replace.apply(this, args);
  } as typeof strings.replace;
  strings.replaceAll = function (this: string, ...args: Parameters<string["replaceAll"]>) {
    reads += this.length;
    return originals.replaceAll.apply(this, args);
  } as typeof strings.replaceAll;
  regexps.test = function (this: RegExp, text: string) {
    reads += text.length;
    return originals.test.call(this, text);
  };
  try {
    await run();
  } finally {
    Object.assign(strings, {
      charCodeAt: originals.charCodeAt,
      indexOf: originals.indexOf,
      slice: originals.slice,
      startsWith: originals.startsWith,
      includes: originals.includes,
      replace: originals.replace,
      replaceAll: originals.replaceAll,
    });
    Object.assign(regexps, { test: originals.test });
  }
  return reads;
}
