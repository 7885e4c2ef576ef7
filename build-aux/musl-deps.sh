#!/bin/sh
# build-aux/musl-deps.sh OUT: libuv and http-parser for musl, for
# `make static` (Makefile). Fetches Debian's source packages of both with
# apt (a private deb-src list derived from the machine's own apt sources,
# so whatever mirror or proxy apt uses here is used), compiles them with
# musl-gcc and leaves, under OUT (build/musl):
#
#   include/uv.h include/uv/*.h include/http_parser.h
#   lib/libuv.a lib/libhttp_parser.a
#   kinc/{linux,asm,asm-generic}   the kernel's uapi headers (musl-gcc
#                                  searches only musl's own include dir)
#   .built                         when all of it is there
#
# Env: MUSL_CC (musl-gcc), MUSL_CFLAGS (compile flags of both libraries),
# JOBS (parallel compiles, default: the number of CPUs).
# Needs musl-tools and dpkg-dev (apt-get source unpacks with dpkg-source).
set -eu

OUT=${1:?usage: musl-deps.sh OUT}
CC=${MUSL_CC:-musl-gcc}
CFLAGS=${MUSL_CFLAGS:--Os}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

command -v "$CC" >/dev/null || { echo "musl-deps: no $CC (apt-get install musl-tools)" >&2; exit 1; }
command -v dpkg-source >/dev/null || { echo "musl-deps: no dpkg-source (apt-get install dpkg-dev)" >&2; exit 1; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
APT=$OUT/apt
rm -rf "$OUT/.built" "$APT" "$OUT/src" "$OUT/include" "$OUT/lib" "$OUT/kinc" "$OUT/obj"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/probe/partial" \
         "$OUT/src" "$OUT/include/uv" "$OUT/lib" "$OUT/kinc" "$OUT/obj"

# --- sources ---------------------------------------------------------------

# The machine's binary repositories, as apt itself resolves them (one-line
# and deb822 files alike): `--print-uris update` with an empty lists dir
# prints every index URI without downloading anything. Each
# .../dists/SUITE/COMP/binary-ARCH/Packages gives "deb-src URI SUITE COMP";
# only main (both packages are there) and, when present, this release's
# suites (codename, codename-updates, codename-security), so that
# third-party repositories without sources stay out.
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
apt-get -o Dir::State::Lists="$APT/probe" --print-uris update 2>/dev/null |
    sed -n "s#^'\([^']*\)/dists/\([^/']*\)/main/binary-[^/']*/Packages[^']*'.*#deb-src \1 \2 main#p" |
    sort -u >"$APT/all.list"
if [ -n "$codename" ] &&
    awk -v c="$codename" '$3 == c || index($3, c "-") == 1' "$APT/all.list" |
    grep -q .; then
    awk -v c="$codename" '$3 == c || index($3, c "-") == 1' "$APT/all.list" \
        >"$APT/sources.list"
else
    cp "$APT/all.list" "$APT/sources.list"
fi
if ! grep -q . "$APT/sources.list"; then
    echo "musl-deps: found no Debian repository in apt's configuration" >&2
    exit 1
fi
echo "musl-deps: Debian sources from: $(awk '{ printf "%s%s %s", s, $2, $3; s = ", " }' "$APT/sources.list")"

# Everything of this apt run is private (sources, lists, caches) and the
# system's update hooks (PackageKit, AppStream) stay out of it; the rest
# of apt's configuration (proxies, auth) applies. Downloads as root:
# build/ may not be _apt's.
cat >"$APT/apt.conf" <<EOF
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
Dir::Etc::SourceList "$APT/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::State::Lists "$APT/lists";
Dir::Cache "$APT/cache";
APT::Sandbox::User "root";
EOF
set -- -q -c "$APT/apt.conf"
apt-get "$@" update >"$APT/update.log" 2>&1 ||
    { cat "$APT/update.log" >&2; echo "musl-deps: apt-get update failed" >&2; exit 1; }
(cd "$OUT/src" && apt-get "$@" source libuv1 http-parser) >"$APT/source.log" 2>&1 ||
    { cat "$APT/source.log" >&2; echo "musl-deps: apt-get source failed" >&2; exit 1; }
uv=$(ls -d "$OUT"/src/libuv1-*/ | head -n1)
hp=$(ls -d "$OUT"/src/http-parser-*/ | head -n1)
echo "musl-deps: $(basename "$uv") $(basename "$hp") ($(cd "$OUT/src" && echo *.dsc))"

# --- kernel headers -------------------------------------------------------

# linux/, asm-generic/ and the arch's asm/ from linux-libc-dev (a
# dependency of libc6-dev), searched after musl's own headers.
multiarch=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)
for d in /usr/include/linux /usr/include/asm-generic "/usr/include/$multiarch/asm"; do
    [ -d "$d" ] || { echo "musl-deps: no $d (apt-get install linux-libc-dev)" >&2; exit 1; }
    ln -s "$d" "$OUT/kinc/$(basename "$d")"
done

# --- libuv ----------------------------------------------------------------

# The Linux build's sources, as libuv's CMakeLists.txt lists them: every
# set(uv_sources ...) / list(APPEND uv_sources ...) at top level, in the
# else() of if(WIN32), or under a top-level if() naming Linux.
awk '
    /^if\(/      { ctx = /^if\(WIN32\)/ ? "win" : \
                         (/Linux/ && !/NOT/) ? "linux" : "other" }
    /^elseif\(/  { ctx = (/Linux/ && !/NOT/) ? "linux" : "other" }
    /^else\(\)/   { ctx = ctx == "win" ? "unix" : "other" }
    /^endif\(\)/  { ctx = "" }
    /^[ \t]*(set\(|list\(APPEND )uv_sources([ \t)]|$)/ { stmt = 1 }
    stmt {
        for (i = 1; i <= NF; i++) {
            f = $i; gsub(/[()]/, "", f)
            if (f ~ /^src\/.*\.c$/ && (ctx == "" || ctx == "unix" || ctx == "linux"))
                print f
        }
        if (/\)/) stmt = 0
    }
' "$uv/CMakeLists.txt" >"$OUT/obj/uv.files"
n=$(wc -l <"$OUT/obj/uv.files")
if [ "$n" -lt 25 ] || ! grep -q '^src/unix/linux' "$OUT/obj/uv.files"; then
    echo "musl-deps: cannot read libuv's Linux sources from CMakeLists.txt ($n files)" >&2
    exit 1
fi

mkdir -p "$OUT/obj/uv" "$OUT/obj/hp"
# Defines as libuv's CMake build sets them for Linux.
UV_FLAGS="-I$uv/include -I$uv/src -idirafter $OUT/kinc -D_FILE_OFFSET_BITS=64 \
    -D_LARGEFILE_SOURCE -D_GNU_SOURCE -D_POSIX_C_SOURCE=200112 \
    -fno-strict-aliasing -w"
export CC CFLAGS UV_FLAGS uv OUT
xargs -P "$JOBS" -n 1 sh -c '
    o=$OUT/obj/uv/$(echo "$1" | tr / _ | sed "s/\.c$/.o/")
    $CC $UV_FLAGS $CFLAGS -c -o "$o" "$uv/$1" || exit 255
' sh <"$OUT/obj/uv.files"
ar rcs "$OUT/lib/libuv.a" "$OUT"/obj/uv/*.o
cp "$uv/include/uv.h" "$OUT/include/"
cp "$uv"/include/uv/*.h "$OUT/include/uv/"

# --- http-parser ----------------------------------------------------------

# As Debian's libhttp_parser (its Makefile's `library` target).
$CC -I"$hp" -DHTTP_PARSER_STRICT=0 $CFLAGS -w -c -o "$OUT/obj/hp/http_parser.o" "$hp/http_parser.c"
ar rcs "$OUT/lib/libhttp_parser.a" "$OUT/obj/hp/http_parser.o"
cp "$hp/http_parser.h" "$OUT/include/"

touch "$OUT/.built"
echo "musl-deps: $OUT/lib/libuv.a ($n files), $OUT/lib/libhttp_parser.a"
