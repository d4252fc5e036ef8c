/**
 * Runs a synchronous operation behind a promise-returning interface: its result resolves
 * the promise and whatever it throws rejects it, as in an async function, without an
 * `async` that awaits nothing.
 */
export function settle<T>(operation: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(operation());
  });
}
