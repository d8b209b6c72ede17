# Shared by scripts/*: package checks and build helpers. Sourced, not run.

# ensure_packages PKG...: installs missing Debian packages when running as
# root, otherwise names them and fails.
ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "heddle: installing missing packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "heddle: missing Debian packages: ${missing[*]}" >&2
    echo "heddle: install them with: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

# Packages every build needs.
HEDDLE_BUILD_PACKAGES=(cmake ninja-build g++ clang libclang-rt-14-dev libgtest-dev libgmock-dev pkgconf liburing-dev libhttp-parser-dev nlohmann-json3-dev gdb doxygen python3)

# Packages the aarch64 preset needs besides those: Debian's cross compiler
# and qemu-user to run the arm64 test programs (GoogleTest is built for
# arm64 from libgtest-dev's sources in /usr/src/googletest).
HEDDLE_AARCH64_PACKAGES=(g++-aarch64-linux-gnu qemu-user libgtest-dev)

# build_preset NAME [TARGET]: configure and build one CMake preset (all of
# it, or TARGET).
build_preset() {
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "$(nproc)" ${2:+--target "$2"}
}
