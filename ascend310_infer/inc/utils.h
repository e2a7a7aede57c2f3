/**
 * File helpers of the ConvLSTM Ascend 310 inference app.
 *
 * Inputs are raw float32 files written by preprocess.py (no header, C order, shape
 * (1, T_in, C, H, W)); outputs are written the same way as <input name>_<k>.bin.
 */
#ifndef CONVLSTM_ASCEND310_INFER_INC_UTILS_H_
#define CONVLSTM_ASCEND310_INFER_INC_UTILS_H_

#include <string>
#include <vector>

#include "include/api/types.h"

namespace convlstm {

// Absolute path of an existing file or directory; empty when it does not exist.
std::string RealPath(const std::string &path);

// Sorted full paths of the *.bin files directly inside dir (empty on error).
std::vector<std::string> ListBinFiles(const std::string &dir);

// File name without directory and extension: "/a/seq_00001.bin" -> "seq_00001".
std::string Stem(const std::string &path);

// Whole file contents; false when the file cannot be read.
bool ReadBinaryFile(const std::string &path, std::vector<char> *data);

// Creates dir (one level) if missing; false on failure.
bool EnsureDirectory(const std::string &dir);

// Writes outputs[k] to dir/<stem>_<k>.bin; false on the first failure.
bool WriteOutputs(const std::string &dir, const std::string &stem,
                  const std::vector<mindspore::MSTensor> &outputs);

}  // namespace convlstm

#endif  // CONVLSTM_ASCEND310_INFER_INC_UTILS_H_
