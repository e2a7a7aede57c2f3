/**
 * ConvLSTM (Moving MNIST) inference on Ascend 310 with the MindSpore C++ API.
 *
 *   out/main --mindir_path=convlstm.mindir --input0_path=preprocess_Result/input \
 *            --result_path=result_Files --device_id=0
 *
 * Loads the MINDIR written by export.py (batch size 1), runs every .bin file in input0_path
 * (raw float32 (1, T_in, C, H, W) from preprocess.py) through Model::Predict and writes the
 * prediction (1, T_out, C, H, W) float32 as result_path/<name>_0.bin for postprocess.py.
 * Timing goes to time_Result/test_perform_static.txt.
 *
 * Built by build.sh against the headers and libmindspore.so of a MindSpore Ascend
 * installation; it needs the Ascend 310 driver and CANN toolkit to run.
 */
#include <gflags/gflags.h>
#include <sys/time.h>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "inc/utils.h"

DEFINE_string(mindir_path, "", "MINDIR file written by export.py with --batch_size 1");
DEFINE_string(input0_path, "./preprocess_Result/input", "directory of the input .bin files from preprocess.py");
DEFINE_string(result_path, "./result_Files", "directory for the output .bin files");
DEFINE_string(time_path, "./time_Result", "directory for the timing summary");
DEFINE_int32(device_id, 0, "Ascend 310 device id");
DEFINE_string(precision_mode, "",
              "Ascend precision mode: force_fp16 (the device default when empty), allow_fp32_to_fp16, "
              "must_keep_origin_dtype (float32 throughout, closest to the CPU/GPU results)");

namespace {

double NowMs() {
  struct timeval now;
  gettimeofday(&now, nullptr);
  return now.tv_sec * 1000.0 + now.tv_usec / 1000.0;
}

// Loads the MINDIR and compiles it for the Ascend 310 device; false with a message on failure.
bool BuildModel(mindspore::Model *model) {
  auto context = std::make_shared<mindspore::Context>();
  auto ascend310 = std::make_shared<mindspore::Ascend310DeviceInfo>();
  ascend310->SetDeviceID(FLAGS_device_id);
  if (!FLAGS_precision_mode.empty()) {
    ascend310->SetPrecisionMode(FLAGS_precision_mode);
  }
  context->MutableDeviceInfo().push_back(ascend310);

  mindspore::Graph graph;
  mindspore::Status status = mindspore::Serialization::Load(FLAGS_mindir_path, mindspore::ModelType::kMindIR, &graph);
  if (status != mindspore::kSuccess) {
    std::cerr << "error: cannot load " << FLAGS_mindir_path << ": " << status.ToString() << std::endl;
    return false;
  }
  status = model->Build(mindspore::GraphCell(graph), context);
  if (status != mindspore::kSuccess) {
    std::cerr << "error: building the model on device " << FLAGS_device_id << " failed: " << status.ToString()
              << std::endl;
    return false;
  }
  return true;
}

// Runs one input file; returns the Predict time in ms, or a negative value on failure.
double InferOne(mindspore::Model *model, const mindspore::MSTensor &input_spec, const std::string &path) {
  std::vector<char> data;
  if (!convlstm::ReadBinaryFile(path, &data)) {
    std::cerr << "error: cannot read " << path << std::endl;
    return -1.0;
  }
  if (data.size() != input_spec.DataSize()) {
    std::cerr << "error: " << path << " has " << data.size() << " bytes but the model input needs "
              << input_spec.DataSize() << " (float32 (1, T_in, C, H, W)); export the model with --batch_size 1"
              << std::endl;
    return -1.0;
  }
  std::vector<mindspore::MSTensor> inputs;
  inputs.emplace_back(input_spec.Name(), input_spec.DataType(), input_spec.Shape(), data.data(), data.size());
  std::vector<mindspore::MSTensor> outputs;
  double start = NowMs();
  mindspore::Status status = model->Predict(inputs, &outputs);
  double elapsed = NowMs() - start;
  if (status != mindspore::kSuccess) {
    std::cerr << "error: Predict failed on " << path << ": " << status.ToString() << std::endl;
    return -1.0;
  }
  if (!convlstm::WriteOutputs(FLAGS_result_path, convlstm::Stem(path), outputs)) {
    return -1.0;
  }
  return elapsed;
}

void WriteTiming(size_t count, double total_ms) {
  double mean = count ? total_ms / count : 0.0;
  std::cout << "inference of " << count << " sequences: " << std::fixed << std::setprecision(3) << mean
            << " ms per sequence (Predict only)" << std::endl;
  if (!convlstm::EnsureDirectory(FLAGS_time_path)) {
    return;
  }
  std::ofstream file(FLAGS_time_path + "/test_perform_static.txt", std::ios::trunc);
  file << "NN inference cost average time: " << mean << " ms of infer_count " << count << std::endl;
}

}  // namespace

int main(int argc, char **argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (convlstm::RealPath(FLAGS_mindir_path).empty()) {
    std::cerr << "error: --mindir_path " << FLAGS_mindir_path << " not found" << std::endl;
    return 1;
  }
  std::string input_dir = convlstm::RealPath(FLAGS_input0_path);
  if (input_dir.empty()) {
    std::cerr << "error: --input0_path " << FLAGS_input0_path << " not found; run preprocess.py first" << std::endl;
    return 1;
  }
  if (!convlstm::EnsureDirectory(FLAGS_result_path)) {
    std::cerr << "error: cannot create --result_path " << FLAGS_result_path << std::endl;
    return 1;
  }
  mindspore::Model model;
  if (!BuildModel(&model)) {
    return 1;
  }
  std::vector<mindspore::MSTensor> model_inputs = model.GetInputs();
  if (model_inputs.size() != 1) {
    std::cerr << "error: the model has " << model_inputs.size() << " inputs; expected 1 (export.py)" << std::endl;
    return 1;
  }
  std::vector<std::string> files = convlstm::ListBinFiles(input_dir);
  if (files.empty()) {
    std::cerr << "error: no .bin files in " << input_dir << std::endl;
    return 1;
  }
  double total_ms = 0.0;
  for (const std::string &path : files) {
    double elapsed = InferOne(&model, model_inputs[0], path);
    if (elapsed < 0) {
      return 1;
    }
    total_ms += elapsed;
  }
  WriteTiming(files.size(), total_ms);
  return 0;
}
