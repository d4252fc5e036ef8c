/** A token for `name` from the sample chat app's demo authority (`POST /demo/token`) at `baseUrl`. */
export async function demoToken(baseUrl: string, name: string): Promise<string> {
  const response = await fetch(`${baseUrl}/demo/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`demo token for ${name}: HTTP ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}
