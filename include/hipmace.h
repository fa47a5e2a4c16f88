/* hipmace: every public header of the library in one include (link with pkg-config --libs hipmace). */
#pragma once

#include <hipmace/sys.h>
#include <hipmace/app.h>
#include <hipmace/so3.h>
#include <hipmace/io.h>
#include <hipmace/graph.h>
#include <hipmace/decomp.h>
#include <hipmace/log.h>
#include <hipmace/model.h>
#include <hipmace/eval.h>
#include <hipmace/hessian.h>
#include <hipmace/eigen.h>
#include <hipmace/optimize.h>
#include <hipmace/builder.h>
#include <hipmace/summary.h>
