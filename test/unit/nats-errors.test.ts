import { ErrorCode, NatsError } from "nats";
import { describe, expect, it } from "vitest";
import { isNotFound, natsErrorKind, type NatsErrorKind } from "../../shared/nats-errors.ts";
import { apiError } from "../helpers/fake-jetstream.ts";

/** A NatsError as nats.js throws for a JetStream API error. */
function jetStreamError(errCode: number, description: string): NatsError {
  const err = new NatsError(description, "400");
  err.api_error = { code: 400, err_code: errCode, description };
  return err;
}

describe("natsErrorKind", () => {
  it.each<[number, NatsErrorKind]>([
    [10014, "consumer_not_found"],
    [10023, "insufficient_resources"],
    [10037, "message_not_found"],
    [10047, "insufficient_resources"],
    [10054, "message_too_large"],
    [10059, "stream_not_found"],
    [10071, "wrong_last_sequence"],
    [10077, "stream_full"],
  ])("knows JetStream's API error %i as %s", (errCode, kind) => {
    expect(natsErrorKind(jetStreamError(errCode, "whatever the server says"))).toBe(kind);
    // The fakes of the unit tests reject with the same shape.
    expect(natsErrorKind(apiError(errCode))).toBe(kind);
  });

  it("tells a full disk (10077 with ENOSPC, nats-server 2.10.27) from a stream at its limits", () => {
    const enospc = jetStreamError(
      10077,
      "write /var/lib/nats/jetstream/$G/streams/METRICS/msgs/146.blk: no space left on device",
    );
    expect(natsErrorKind(enospc)).toBe("insufficient_resources");
    expect(natsErrorKind(jetStreamError(10077, "maximum bytes exceeded"))).toBe("stream_full");
  });

  it.each<[string, NatsErrorKind]>([
    [ErrorCode.Timeout, "timeout"],
    [ErrorCode.NoResponders, "no_responders"],
    [ErrorCode.MaxPayloadExceeded, "message_too_large"],
    [ErrorCode.ConnectionRefused, "other"],
  ])("knows nats.js's code %s as %s", (code, kind) => {
    expect(natsErrorKind(NatsError.errorForCode(code))).toBe(kind);
  });

  it.each<[string, NatsErrorKind]>([
    ["maximum messages exceeded", "stream_full"],
    ["nats: maximum bytes exceeded", "stream_full"],
    ["resource limits exceeded for account", "stream_full"],
    ["insufficient resources", "insufficient_resources"],
    ["wrong last sequence: 4", "wrong_last_sequence"],
    ["stream not found", "stream_not_found"],
    ["consumer not found", "consumer_not_found"],
    ["no message found", "message_not_found"],
    ["something else", "other"],
  ])("knows a message %j without a code as %s", (message, kind) => {
    expect(natsErrorKind(new Error(message))).toBe(kind);
  });

  it("takes the API's code over the message and the message over the client's code", () => {
    const both = jetStreamError(10071, "maximum messages exceeded");
    expect(natsErrorKind(both)).toBe("wrong_last_sequence");
    const full = Object.assign(new Error("maximum messages exceeded"), { code: ErrorCode.Timeout });
    expect(natsErrorKind(full)).toBe("stream_full");
  });

  it.each([undefined, null, "timeout", 503, {}])("calls %j other", (value) => {
    expect(natsErrorKind(value)).toBe("other");
  });
});

describe("isNotFound", () => {
  it("is true for a missing stream or consumer only", () => {
    expect(isNotFound(apiError(10059))).toBe(true);
    expect(isNotFound(apiError(10014))).toBe(true);
    expect(isNotFound(apiError(10037))).toBe(false);
    expect(isNotFound(NatsError.errorForCode(ErrorCode.Timeout))).toBe(false);
  });
});
