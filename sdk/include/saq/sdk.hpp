#pragma once
/// Everything a plugin includes.
#include <saq/abi.hpp>
#include <saq/collective.hpp>
#include <saq/dataset.hpp>
#include <saq/layers.hpp>
#include <saq/log.hpp>
#include <saq/model.hpp>
#include <saq/optimizer.hpp>
#include <saq/params.hpp>
#include <saq/quantizer.hpp>
#include <saq/random.hpp>
#include <saq/registrar.hpp>
#include <saq/search.hpp>
#include <saq/supernet.hpp>
