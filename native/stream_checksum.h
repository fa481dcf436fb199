// CRC-32C (Castagnoli): the per-chunk wire check of verified transfers.
// Hardware instructions where the CPU has them (SSE 4.2 on x86-64, the CRC32
// extension on ARMv8), chosen at run time; a table otherwise. The whole-file
// check stays SHA-256 (lib/transfer): this only catches corruption early,
// per chunk, so one chunk is resent instead of the file.
#pragma once
#include <cstddef>
#include <cstdint>

namespace onbus {

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len);

}  // namespace onbus
