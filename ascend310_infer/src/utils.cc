/**
 * File helpers of the ConvLSTM Ascend 310 inference app (see inc/utils.h).
 */
#include "inc/utils.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iostream>

namespace convlstm {

std::string RealPath(const std::string &path) {
  char resolved[PATH_MAX] = {0};
  if (path.empty() || realpath(path.c_str(), resolved) == nullptr) {
    return "";
  }
  return std::string(resolved);
}

namespace {

bool EndsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsRegularFile(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

std::vector<std::string> ListBinFiles(const std::string &dir) {
  std::vector<std::string> files;
  DIR *handle = opendir(dir.c_str());
  if (handle == nullptr) {
    std::cerr << "error: cannot open input directory " << dir << std::endl;
    return files;
  }
  for (struct dirent *entry = readdir(handle); entry != nullptr; entry = readdir(handle)) {
    std::string name(entry->d_name);
    std::string full = dir + "/" + name;
    if (EndsWith(name, ".bin") && IsRegularFile(full)) {
      files.push_back(full);
    }
  }
  closedir(handle);
  std::sort(files.begin(), files.end());  // seq_00000, seq_00001, ...: same order as preprocess.py
  return files;
}

std::string Stem(const std::string &path) {
  size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = name.find_last_of('.');
  return dot == std::string::npos ? name : name.substr(0, dot);
}

bool ReadBinaryFile(const std::string &path, std::vector<char> *data) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file.is_open()) {
    return false;
  }
  std::streamsize size = file.tellg();
  if (size < 0) {
    return false;
  }
  file.seekg(0, std::ios::beg);
  data->resize(static_cast<size_t>(size));
  return size == 0 || static_cast<bool>(file.read(data->data(), size));
}

bool EnsureDirectory(const std::string &dir) {
  struct stat info;
  if (stat(dir.c_str(), &info) == 0) {
    return S_ISDIR(info.st_mode);
  }
  return mkdir(dir.c_str(), 0750) == 0;
}

bool WriteOutputs(const std::string &dir, const std::string &stem,
                  const std::vector<mindspore::MSTensor> &outputs) {
  for (size_t k = 0; k < outputs.size(); ++k) {
    std::string path = dir + "/" + stem + "_" + std::to_string(k) + ".bin";
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    std::shared_ptr<const void> data = outputs[k].Data();
    if (!file.is_open() || data == nullptr) {
      std::cerr << "error: cannot write output " << path << std::endl;
      return false;
    }
    file.write(static_cast<const char *>(data.get()), static_cast<std::streamsize>(outputs[k].DataSize()));
    if (!file) {
      std::cerr << "error: short write to " << path << std::endl;
      return false;
    }
  }
  return true;
}

}  // namespace convlstm
