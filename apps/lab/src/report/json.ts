import { writeFile } from 'node:fs/promises';

import type { LabReport } from './report.types.js';

/** The whole report, every figure and the exact parameters, as indented JSON. */
export async function writeJsonReport(report: LabReport, file: string): Promise<void> {
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
