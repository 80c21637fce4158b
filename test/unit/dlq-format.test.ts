import { headers } from "nats";
import { describe, expect, it } from "vitest";
import {
  formatCount,
  formatJsonLine,
  formatListLine,
  LIST_HEADER,
  replayMsgId,
  shorten,
  summarize,
  type DeadLetterSummary,
} from "../../scripts/dlq-format.ts";
import { DLQ_HEADERS } from "../../worker/dead-letters.ts";

const time = new Date("2026-03-04T05:06:07.890Z");

function deadLetterHeaders(fields: Partial<Record<keyof typeof DLQ_HEADERS, string>>) {
  const h = headers();
  for (const [key, value] of Object.entries(fields)) {
    h.set(DLQ_HEADERS[key as keyof typeof DLQ_HEADERS], value);
  }
  return h;
}

const invalid: DeadLetterSummary = summarize(
  12,
  time,
  deadLetterHeaders({
    reason: "invalid_envelope",
    detail: "/metrics/0/value must be number",
    stream: "METRICS",
    streamSeq: "345",
    subject: "metrics.json",
    deliveries: "1",
    msgId: "fixme-1",
  }),
);

describe("summarize", () => {
  it("reads the Dlq-* headers, numbers as numbers", () => {
    expect(invalid).toEqual({
      seq: 12,
      time,
      reason: "invalid_envelope",
      detail: "/metrics/0/value must be number",
      stream: "METRICS",
      streamSeq: 345,
      subject: "metrics.json",
      deliveries: 1,
      msgId: "fixme-1",
    });
  });

  it("leaves undefined what a message put there by hand does not say", () => {
    const bare = summarize(3, time, undefined);
    expect(bare).toEqual({
      seq: 3,
      time,
      reason: undefined,
      detail: undefined,
      stream: undefined,
      streamSeq: undefined,
      subject: undefined,
      deliveries: undefined,
      msgId: undefined,
    });
    expect(summarize(3, time, deadLetterHeaders({ streamSeq: "x1", deliveries: "" }))).toEqual(
      bare,
    );
  });
});

describe("formatListLine", () => {
  it("puts the columns in order under the header", () => {
    const line = formatListLine(invalid);
    expect(line.trim().split(/\s{2,}/)).toEqual([
      "12",
      "2026-03-04T05:06:07Z",
      "invalid_envelope",
      "/metrics/0/value must be number",
      "METRICS:345",
      "1",
      "fixme-1",
    ]);
    // Each column starts where its title does.
    const starts: [title: string, value: string][] = [
      ["DEAD-LETTERED", "2026-03-04"],
      ["REASON", "invalid_envelope"],
      ["DETAIL", "/metrics/0"],
      ["SOURCE", "METRICS:345"],
      ["MSG-ID", "fixme-1"],
    ];
    for (const [title, value] of starts) {
      expect(line.indexOf(value), title).toBe(LIST_HEADER.indexOf(title));
    }
    // Right-aligned numbers end where their titles end.
    expect(line.indexOf("12") + 2).toBe(LIST_HEADER.indexOf("SEQ") + 3);
    expect(line.indexOf("  1  ") + 3).toBe(LIST_HEADER.indexOf("DELIVERIES") + 10);
  });

  it("shortens a long detail to its column, keeping the line aligned", () => {
    const long = { ...invalid, detail: `not UTF-8 JSON: ${"x".repeat(500)}` };
    const line = formatListLine(long);
    expect(line).toContain(`not UTF-8 JSON: ${"x".repeat(23)}…  METRICS:345`);
    expect(line.length).toBe(formatListLine(invalid).length);
  });

  it("shows a dash for a missing header", () => {
    const line = formatListLine(summarize(7, time, undefined));
    expect(line.trim().split(/\s{2,}/)).toEqual([
      "7",
      "2026-03-04T05:06:07Z",
      "-",
      "-",
      "-",
      "-",
      "-",
    ]);
  });

  it("is one line", () => {
    expect(formatListLine(invalid)).not.toContain("\n");
    expect(LIST_HEADER).not.toContain("\n");
  });
});

describe("shorten", () => {
  it("keeps text that fits and cuts what does not, marking the cut", () => {
    expect(shorten("abc", 3)).toBe("abc");
    expect(shorten("abcd", 3)).toBe("ab…");
    expect(shorten("abcd", 3)).toHaveLength(3);
  });
});

describe("formatCount", () => {
  it("counts in words", () => {
    expect(formatCount(0, "METRICS_DLQ")).toBe("no dead letters in METRICS_DLQ");
    expect(formatCount(1, "METRICS_DLQ")).toBe("1 dead letter in METRICS_DLQ");
    expect(formatCount(3, "METRICS_DLQ")).toBe("3 dead letters in METRICS_DLQ");
  });
});

describe("formatJsonLine", () => {
  it("gives every field, the detail in full and the time in ISO 8601", () => {
    const long = { ...invalid, detail: "y".repeat(300) };
    expect(JSON.parse(formatJsonLine(long))).toEqual({
      seq: 12,
      time: "2026-03-04T05:06:07.890Z",
      reason: "invalid_envelope",
      detail: "y".repeat(300),
      stream: "METRICS",
      streamSeq: 345,
      subject: "metrics.json",
      deliveries: 1,
      msgId: "fixme-1",
    });
  });
});

describe("replayMsgId", () => {
  it("is the same for the same dead letter, and differs between dead letters and streams", () => {
    expect(replayMsgId("METRICS_DLQ", 7)).toBe("replay:METRICS_DLQ:7");
    expect(replayMsgId("METRICS_DLQ", 7)).toBe(replayMsgId("METRICS_DLQ", 7));
    expect(replayMsgId("METRICS_DLQ", 8)).not.toBe(replayMsgId("METRICS_DLQ", 7));
    expect(replayMsgId("OTHER_DLQ", 7)).not.toBe(replayMsgId("METRICS_DLQ", 7));
  });
});
