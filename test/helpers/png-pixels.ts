import { PNG } from "pngjs";

/** Pixels of a PNG close to `rgb` (each channel within `tolerance`). */
export function countPixels(
  png: Buffer,
  rgb: readonly [number, number, number],
  tolerance = 40,
): number {
  const image = PNG.sync.read(png);
  let count = 0;
  for (let i = 0; i < image.data.length; i += 4) {
    const r = image.data[i] ?? 0;
    const g = image.data[i + 1] ?? 0;
    const b = image.data[i + 2] ?? 0;
    if (
      Math.abs(r - rgb[0]) <= tolerance &&
      Math.abs(g - rgb[1]) <= tolerance &&
      Math.abs(b - rgb[2]) <= tolerance
    ) {
      count++;
    }
  }
  return count;
}

/** Pixels of a PNG that are not the background (white, within `tolerance`). */
export function nonBackgroundPixels(png: Buffer, tolerance = 8): number {
  const image = PNG.sync.read(png);
  return image.width * image.height - countPixels(png, [255, 255, 255], tolerance);
}
