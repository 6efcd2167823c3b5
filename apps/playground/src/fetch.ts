/** Fetching the page's files, with errors that say which file failed and what to do about it. */

/** An error to show on the page: what failed, why, and what to do. */
export class PageError extends Error {
  constructor(
    message: string,
    /** What the reader can do about it. */
    readonly hint: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PageError';
  }
}

/** An error's message as a sentence: one full stop at the end. */
const sentence = (e: unknown) => `${(e instanceof Error ? e.message : String(e)).replace(/[.\s]+$/, '')}.`;

/**
 * The bytes at `url`. `what` names the file for the reader ("the generator's weights"), `param` the
 * URL parameter that can point it elsewhere.
 */
export async function fetchBytes(url: string, what: string, param: string): Promise<Uint8Array> {
  const hint = `Run \`pnpm playground:build\` (it puts the weights and model.onnx into dist/), or point ?${param}= at a file that is there.`;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new PageError(`Could not load ${what} from ${url}: ${sentence(e)}`, hint, { cause: e });
  }
  if (!res.ok) throw new PageError(`Could not load ${what} from ${url}: the server answered ${res.status} ${res.statusText}.`.replace(' .', '.'), hint);
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new PageError(`Could not load ${what} from ${url}: the download broke off: ${sentence(e)}`, hint, { cause: e });
  }
}

/** Parses fetched bytes with `parse`; a parse error becomes a {@link PageError} naming the file. */
export function parseBytes<T>(bytes: Uint8Array, url: string, what: string, param: string, parse: (bytes: Uint8Array) => T): T {
  try {
    return parse(bytes);
  } catch (e) {
    throw new PageError(
      `${what[0]!.toUpperCase()}${what.slice(1)} at ${url} could not be read (${bytes.length} bytes): ${sentence(e)}`,
      `The file is damaged or of another kind: rebuild with \`pnpm playground:build\`, or point ?${param}= at a good one.`,
      { cause: e },
    );
  }
}
