# SPDX-License-Identifier: Apache-2.0
# cmake -DMANIFEST=<build>/install_manifest.txt -P uninstall.cmake: removes
# every file the install wrote (DESTDIR honoured), then our own directories
# left empty.
if(NOT EXISTS "${MANIFEST}")
    message(FATAL_ERROR "no ${MANIFEST}: nothing was installed from this build")
endif()
file(STRINGS "${MANIFEST}" _files)
set(_dirs)
foreach(f IN LISTS _files)
    set(f "$ENV{DESTDIR}${f}")
    if(EXISTS "${f}" OR IS_SYMLINK "${f}")
        message(STATUS "Removing ${f}")
        file(REMOVE "${f}")
        if(EXISTS "${f}" OR IS_SYMLINK "${f}")
            message(FATAL_ERROR "cannot remove ${f}")
        endif()
    endif()
    get_filename_component(d "${f}" DIRECTORY)
    list(APPEND _dirs "${d}")
endforeach()
# then our own directories (docdir, include/ocspstaple) when left empty;
# the shared ones (bin, lib, man, ossl-modules, systemd) stay
list(REMOVE_DUPLICATES _dirs)
foreach(d IN LISTS _dirs)
    get_filename_component(name "${d}" NAME)
    if(IS_DIRECTORY "${d}" AND name STREQUAL "ocspstaple")
        file(GLOB _left "${d}/*" "${d}/.*")
        if(NOT _left)
            message(STATUS "Removing ${d}/")
            file(REMOVE_RECURSE "${d}")
        endif()
    endif()
endforeach()
