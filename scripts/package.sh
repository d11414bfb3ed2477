#!/usr/bin/env bash
# Builds the portable archive of the tool, for the offline side of the air gap:
#
#   bundles/aas-bundle-VERSION-linux-ARCH.tar.gz      (and its .sha256)
#     aas-bundle-VERSION-linux-ARCH/bin/aas-bundle    the release-built binary
#     aas-bundle-VERSION-linux-ARCH/lib/              every shared library it needs beyond glibc
#     aas-bundle-VERSION-linux-ARCH/README.txt        what it needs from the machine, how to run it
#
# It runs on a Debian 12 (or any glibc >= the version README.txt names) machine without
# any of the build's -dev packages or their runtime libraries: nothing to install.
#
# How the binary finds lib/: it is linked with an RPATH of $ORIGIN/../lib (DT_RPATH, not
# DT_RUNPATH: --disable-new-dtags), so the dynamic loader looks in the archive's lib/ first,
# for the binary's own libraries and for theirs (libcurl's libnghttp2, libssh2, ...;
# DT_RUNPATH would cover only the direct ones). No launcher script: bin/aas-bundle is the
# binary itself, works from any folder and through symlinks to it (the loader resolves
# $ORIGIN through /proc/self/exe, so /proc must be mounted, as on any running system), and sets no
# LD_LIBRARY_PATH that programs it starts (credential helpers) would inherit and load the
# archive's libraries with.
#
# glibc (libc, libm, libpthread, libdl, librt, libresolv, ld-linux: whatever the libc6
# package owns) is not shipped: it must match the machine's kernel interface and loader.
#
# Idempotent: installs what is missing with apt-get (scripts/setup.sh), rebuilds only what
# changed in build-release/, and replaces the archive. SOURCE_DATE_EPOCH (default: the last
# commit's time) fixes the archive's timestamps.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh >/dev/null

# Release build at -O2 (GCC 12's -O3 reports false -Wrestrict positives in libstdc++'s
# string code, and the build keeps -Werror), no debug info, assertions off.
build=build-release
link_args='-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib'
opts=(-Doptimization=2 -Ddebug=false -Db_ndebug=true -Dtests=disabled -Dwerror=true
      "-Dcpp_link_args=$link_args")
if [ -f "$build/build.ninja" ]; then
  meson configure "$build" "${opts[@]}" >/dev/null
else
  meson setup "$build" --buildtype=release "${opts[@]}" >/dev/null
fi
ninja -C "$build" src/cli/aas-bundle >/dev/null

exe="$build/src/cli/aas-bundle"
version=$("$exe" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
name="aas-bundle-$version-linux-$arch"

# The RPATH is what makes the archive relocatable: check it is there, as written.
rpath=$(readelf -d "$exe" | sed -n 's/.*(RPATH).*\[\(.*\)\]/\1/p')
case ":$rpath:" in
  *':$ORIGIN/../lib:'*) ;;
  *) echo "package: $exe has RPATH '$rpath', not \$ORIGIN/../lib" >&2; exit 1 ;;
esac

stage=$(mktemp -d "$root/bundles/.package-XXXXXX")
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/bin" "$dir/lib"
install -m 0755 "$exe" "$dir/bin/aas-bundle"
strip --strip-unneeded "$dir/bin/aas-bundle"

# Every library the loader resolves (transitively), but glibc's.
shipped=()
while read -r soname path; do
  [ -n "$path" ] || continue
  real=$(readlink -f "$path")
  owner=$(dpkg-query -S "$real" 2>/dev/null | head -1 | cut -d: -f1 || true)
  [ -n "$owner" ] || owner=$(dpkg-query -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)
  case "$owner" in
    libc6) continue ;;
  esac
  case "$soname" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|ld-linux*) continue ;;
  esac
  install -m 0644 "$real" "$dir/lib/$soname"
  shipped+=("$soname (${owner:-?})")
done < <(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')

# The newest glibc symbol version anything in the archive needs.
glibc=$(objdump -T "$dir/bin/aas-bundle" "$dir"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)
glibc=${glibc#GLIBC_}

{
  echo "aas-bundle $version for linux/$arch, portable"
  echo
  echo "Needs from the machine: glibc $glibc or newer (\`ldd --version\` says; Debian 12 has 2.36)"
  echo "and /proc mounted (as on any running Linux: the loader finds lib/ through"
  echo "/proc/self/exe); nothing else. Unpack anywhere and run bin/aas-bundle, or link it"
  echo "into PATH:"
  echo
  echo "  tar -xzf $name.tar.gz"
  echo "  $name/bin/aas-bundle verify BUNDLE --key signer.pub"
  echo "  sudo ln -s \"\$PWD/$name/bin/aas-bundle\" /usr/local/bin/aas-bundle"
  echo
  echo "TLS to the private registry: give --ca-file (the archive carries no CA store)."
  echo
  echo "lib/ holds the shared libraries it needs beyond glibc, from Debian 12 (package in"
  echo "parentheses); bin/aas-bundle finds them through its RPATH (\$ORIGIN/../lib):"
  printf '  %s\n' "${shipped[@]}"
} > "$dir/README.txt"

epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
out="bundles/$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$stage" -cf - "$name" \
  | gzip -n -9 > "$stage/archive.tar.gz"
mv -f "$stage/archive.tar.gz" "$out"
(cd bundles && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out"
