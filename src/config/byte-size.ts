// Memory sizes as people write them in herd.yaml: "512Mi", "1G", "1.5GiB" or a number of
// bytes. Binary suffixes (Ki, Mi, Gi, Ti) are powers of 1024; decimal ones (k/K, M, G, T)
// powers of 1000, as in Kubernetes.

const FACTOR: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

const SIZE = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/;

export const SIZE_HINT = 'use e.g. "512Mi", "1G", "64Ki" or a number of bytes';

/** Whole bytes, or an error message saying what is wrong. */
export function parseByteSize(value: string | number): { bytes: number } | { error: string } {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      return { error: `${value} is not a size: bytes must be a whole number ≥ 0` };
    }
    return { bytes: value };
  }
  const m = SIZE.exec(value.trim());
  const factor = m ? FACTOR[m[2]!.toLowerCase()] : undefined;
  // Lower-case "m" is milli in Kubernetes: refuse it rather than guess megabytes.
  if (m === null || factor === undefined || m[2] === "m") {
    return { error: `${JSON.stringify(value)} is not a size (${SIZE_HINT})` };
  }
  return { bytes: Math.round(Number(m[1]) * factor) };
}
