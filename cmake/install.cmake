# Install rules (included from the top CMakeLists.txt): the static library `convoy`, a shared
# library built from the same objects (convoy_shared, libconvoy.so), the public headers, a CMake
# package (find_package(convoy) -> convoy::convoy, the shared library, or convoy::convoy_static)
# and convoy.pc for pkg-config. Only the library's own dependencies (protobuf, onnx_proto,
# Highway, threads) are exported; OpenCV stays with the CLI and its codec plugin.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Export only the public API from the shared library: convoy.hpp and convoy.h mark their
# declarations default-visible, everything else (IR, kernels, Highway, protobuf code) is hidden.
set_target_properties(convoy PROPERTIES C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
                                        VISIBILITY_INLINES_HIDDEN ON EXPORT_NAME convoy_static)

# The same object files as the static library (compiled once, position independent).
add_library(convoy_shared SHARED $<TARGET_OBJECTS:convoy>)
add_library(convoy::convoy_shared ALIAS convoy_shared)
set_target_properties(convoy_shared PROPERTIES
  OUTPUT_NAME convoy EXPORT_NAME convoy
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
target_include_directories(convoy_shared PUBLIC
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(convoy_shared PUBLIC cxx_std_20)
target_compile_features(convoy PUBLIC cxx_std_20)
target_link_libraries(convoy_shared PRIVATE ${ONNX_PROTO_LIB} protobuf::libprotobuf PkgConfig::HWY Threads::Threads)
# A missing symbol must fail here, not in the embedding application.
target_link_options(convoy_shared PRIVATE LINKER:--no-undefined)

install(TARGETS convoy convoy_shared EXPORT convoyTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/convoy/convoy.hpp ${CMAKE_SOURCE_DIR}/include/convoy/convoy.h
  ${CMAKE_SOURCE_DIR}/include/convoy/train.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convoy)
install(TARGETS convoy_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The CLI's image codec plugin (tools/image_codecs.h), where `convoy` looks for it: <libdir>/convoy,
# found from bin/ through CONVOY_IMGCODECS_BIN_TO_PLUGIN_DIR. Not part of the exported package.
install(TARGETS convoy_imgcodecs LIBRARY DESTINATION ${CONVOY_IMGCODECS_INSTALL_DIR})

set(CONVOY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/convoy)
install(EXPORT convoyTargets NAMESPACE convoy:: DESTINATION ${CONVOY_CMAKE_DIR})
set(CONVOY_ONNX_PROTO_LIB ${ONNX_PROTO_LIB})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/convoyConfig.cmake.in
  ${CMAKE_BINARY_DIR}/convoyConfig.cmake INSTALL_DESTINATION ${CONVOY_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/convoyConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/convoyConfig.cmake ${CMAKE_BINARY_DIR}/convoyConfigVersion.cmake
  DESTINATION ${CONVOY_CMAKE_DIR})

# pkg-config: `pkg-config --cflags --libs convoy` links the shared library; `--static` adds the
# static library's dependencies. Paths are computed from ${pcfiledir}, so the prefix can move.
file(RELATIVE_PATH CONVOY_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" CONVOY_PC_TO_PREFIX "${CONVOY_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/convoy.pc.in ${CMAKE_BINARY_DIR}/convoy.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/convoy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
