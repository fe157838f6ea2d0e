/**
 * KRGO_NETWORK_TIMEOUT_SCALE multiplies every network time limit (headers, idle body, minimum
 * rate window, retry deadline): the tests of hostile registries run them at a tenth of their
 * length instead of waiting minutes. Anything but a positive number is ignored.
 */
export function networkTimeoutScale(): number {
  const scale = Number(process.env['KRGO_NETWORK_TIMEOUT_SCALE']);
  return Number.isFinite(scale) && scale > 0 ? scale : 1;
}
