import { BlockList, isIPv6 } from "node:net";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * True when `host` is a loopback address (127.0.0.0/8, ::1) or `localhost`: a server listening
 * there is reachable from this machine only. Any other name, and `0.0.0.0` or `::`, is not.
 */
export function isLoopbackHost(host: string): boolean {
  const address = host
    .trim()
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase();
  if (address === "localhost") return true;
  try {
    return LOOPBACK.check(address, isIPv6(address) ? "ipv6" : "ipv4");
  } catch {
    return false; // not an IP address: a host name, which may resolve to anything
  }
}
