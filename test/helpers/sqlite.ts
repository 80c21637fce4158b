import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";

export interface StoredRow {
  dedup_key: string;
  name: string | null;
  value: number;
  time_ms: number;
  received_ms: number;
  tags: string;
  metric: string;
  msg_id: string;
}

/** Every row of the metrics table, in insertion order; none when the file is not there yet. */
export function readRows(path: string): StoredRow[] {
  if (!existsSync(path)) return [];
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const hasTable = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metrics'")
      .get();
    if (!hasTable) return [];
    return db.prepare("SELECT * FROM metrics ORDER BY id").all() as unknown as StoredRow[];
  } finally {
    db.close();
  }
}
