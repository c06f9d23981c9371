// A minimal protobuf wire-format pass over a serialized ModelProto that cuts the initializers'
// raw_data payloads out (recording where they are), so protobuf parses only the small rest and
// the weights are read once, straight into their final buffers: no second copy, no growth
// reallocations of huge strings.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

struct RawDataRef {
  bool present = false;
  uint64_t offset = 0;  // byte offset of the payload in the serialized model
  uint64_t length = 0;
};

// Writes the ModelProto [data, data+size) without graph.initializer[*].raw_data to `out` and
// one RawDataRef per initializer, in order. Returns false on malformed wire data (the caller
// then reports the file as corrupt).
bool strip_initializer_raw_data(const uint8_t* data, size_t size, std::string* out, std::vector<RawDataRef>* refs);

// Field numbers in onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.raw_data.
inline constexpr uint64_t kModelGraphField = 7, kGraphInitializerField = 5, kTensorRawDataField = 9;

// Appends a varint; appends the key and length of a length-delimited field (its payload follows).
void write_varint(std::string& out, uint64_t v);
void write_length_prefix(std::string& out, uint64_t field, uint64_t length);

}  // namespace convoy
