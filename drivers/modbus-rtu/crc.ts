/** CRC-16/MODBUS (poly 0x8005 reflected = 0xA001, init 0xFFFF), sent low byte first (Modbus over Serial Line §2.5.1.2). */
const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  TABLE[i] = c;
}

export function crc16(data: Uint8Array, end = data.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ data[i]!) & 0xff]!;
  return crc;
}

/** The frame with its CRC appended. */
export function withCrc(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 2);
  body.copy(out);
  out.writeUInt16LE(crc16(body), body.length);
  return out;
}

/** Whether the last two bytes are the CRC of the rest. */
export function crcValid(frame: Buffer): boolean {
  return frame.length >= 4 && frame.readUInt16LE(frame.length - 2) === crc16(frame, frame.length - 2);
}
