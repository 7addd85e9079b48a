/*  wrk_device: device discovery and selection, context and profiling queue,
 *  the device description, and the program cache (in memory and on disk).
 *
 *  On-disk cache files are named "<source name>-<key>.clbin", where KEY is
 *  FNV-1a 64 over (cache format, platform name, device name, driver
 *  version, header text, source text, build options). A file holds a
 *  32-byte header (magic "rxqclbin", key, payload size, FNV-1a 64 of the
 *  payload, all little-endian uint64 on the machines we run on: the cache
 *  is local to one host) and then the driver's binary. The header is
 *  checked before the driver sees the payload, because some drivers crash
 *  on garbage binaries rather than return CL_INVALID_BINARY.
 */
#include "wrk_device.h"
#include "cmn_codec.h"
#include "cmn_log.h"
#include "rxq_kernels.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  CL_PLATFORM_NOT_FOUND_KHR, from cl_ext.h: what the ICD loader returns
//  when it finds no vendor ICD at all.
#define S_PLATFORM_NOT_FOUND (-1001)

//  Bumped when the cache file layout or key changes, so old files miss.
#define S_CACHE_FORMAT 1
#define S_CACHE_MAGIC "rxqclbin"
#define S_CACHE_HEADER 32
//  A cache file larger than this is not a program binary we wrote.
#define S_CACHE_MAX_BYTES ((size_t) 1 << 30)
//  How much of the build log an error message carries.
#define S_BUILD_LOG_CHARS 200

typedef struct _s_program_t {
    char *name;                 // source file name
    char *options;              // full build options, -cl-std included
    cl_program program;         // built program, owned
    struct _s_program_t *next;  // next entry of the in-memory cache
} s_program_t;

struct _wrk_device_t {
    cl_platform_id platform;    // platform of the device
    cl_device_id device;        // the device
    cl_context context;         // owned
    cl_command_queue queue;     // owned; in order, profiling enabled
    wrk_device_info_t info;     // description, filled once at open
    char *cache_dir;            // binary cache directory, or NULL for none
    s_program_t *programs;      // in-memory program cache, a list
    wrk_device_stats_t stats;   // program cache counters
    int i8_dot;                 // wrk_kernels' int8 dot decision, -1 untested
};

//  One device found by enumeration.
typedef struct {
    cl_platform_id platform;    // its platform
    cl_device_id device;        // the device
    unsigned p, d;              // platform index, device index within it
    cl_device_type type;        // CL_DEVICE_TYPE_* bits
    char label [300];           // "platform name / device name"
} s_entry_t;


//  --------------------------------------------------------------------------
//  Small helpers

int
wrk_device_cl_error (cmn_err_t *err, const char *what, cl_int status)
{
    return cmn_err_set (err, RXQ_E_OPENCL, "%s: %s (%d)", what,
                        cmn_cl_strerror (status), (int) status);
}

//  Copies string info of DEVICE into BUF (truncating, trimming trailing
//  blanks that some drivers pad names with). Leaves "" on failure: names
//  are descriptive and a driver that cannot give one is not fatal.
static void
s_device_str (cl_device_id device, cl_device_info param, char *buf, size_t size)
{
    buf [0] = 0;
    size_t len = 0;
    if (clGetDeviceInfo (device, param, 0, NULL, &len) != CL_SUCCESS || len == 0)
        return;
    char *tmp = malloc (len + 1);
    if (!tmp)
        return;
    if (clGetDeviceInfo (device, param, len, tmp, NULL) == CL_SUCCESS) {
        tmp [len] = 0;
        snprintf (buf, size, "%s", tmp);
        size_t n = strlen (buf);
        while (n > 0 && isspace ((unsigned char) buf [n - 1]))
            buf [--n] = 0;
    }
    free (tmp);
}

static void
s_platform_str (cl_platform_id platform, cl_platform_info param, char *buf, size_t size)
{
    buf [0] = 0;
    size_t len = 0;
    if (clGetPlatformInfo (platform, param, 0, NULL, &len) != CL_SUCCESS || len == 0)
        return;
    char *tmp = malloc (len + 1);
    if (!tmp)
        return;
    if (clGetPlatformInfo (platform, param, len, tmp, NULL) == CL_SUCCESS) {
        tmp [len] = 0;
        snprintf (buf, size, "%s", tmp);
        size_t n = strlen (buf);
        while (n > 0 && isspace ((unsigned char) buf [n - 1]))
            buf [--n] = 0;
    }
    free (tmp);
}

//  True when the space-separated extension list of DEVICE holds NAME as a
//  whole word (cl_khr_fp16 must not match cl_khr_fp16_foo).
static bool
s_has_extension (cl_device_id device, const char *name)
{
    size_t len = 0;
    if (clGetDeviceInfo (device, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS
    ||  len == 0)
        return false;
    char *ext = malloc (len + 1);
    if (!ext)
        return false;
    bool found = false;
    if (clGetDeviceInfo (device, CL_DEVICE_EXTENSIONS, len, ext, NULL) == CL_SUCCESS) {
        ext [len] = 0;
        size_t nlen = strlen (name);
        for (const char *p = ext; (p = strstr (p, name)) != NULL; p += nlen) {
            bool starts = p == ext || isspace ((unsigned char) p [-1]);
            bool ends = p [nlen] == 0 || isspace ((unsigned char) p [nlen]);
            if (starts && ends) {
                found = true;
                break;
            }
        }
    }
    free (ext);
    return found;
}

static const char *
s_type_name (cl_device_type type)
{
    if (type & CL_DEVICE_TYPE_GPU)
        return "gpu";
    if (type & CL_DEVICE_TYPE_CPU)
        return "cpu";
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    return "other";
}

//  Lists every device of every platform into *ENTRIES_P (caller frees) and
//  the number of platforms into *PLATFORMS_P. Zero platforms is not an
//  error here: callers word that case for the user.
static int
s_enumerate (s_entry_t **entries_p, size_t *count_p, cl_uint *platforms_p,
             cmn_err_t *err)
{
    *entries_p = NULL;
    *count_p = 0;
    *platforms_p = 0;
    cl_uint np = 0;
    cl_int rc = clGetPlatformIDs (0, NULL, &np);
    if (rc == S_PLATFORM_NOT_FOUND || (rc == CL_SUCCESS && np == 0))
        return 0;
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clGetPlatformIDs", rc);
    cl_platform_id *platforms = calloc (np, sizeof *platforms);
    if (!platforms)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory listing OpenCL platforms");
    rc = clGetPlatformIDs (np, platforms, NULL);
    if (rc != CL_SUCCESS) {
        free (platforms);
        return wrk_device_cl_error (err, "clGetPlatformIDs", rc);
    }
    *platforms_p = np;
    s_entry_t *entries = NULL;
    size_t count = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        rc = clGetDeviceIDs (platforms [p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        //  A platform without devices (an ICD whose hardware is absent) is
        //  skipped, not fatal: another platform may have what we need.
        if (rc != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id *devices = calloc (nd, sizeof *devices);
        s_entry_t *grown = devices ? realloc (entries, (count + nd) * sizeof *entries) : NULL;
        if (!grown) {
            free (devices);
            free (entries);
            free (platforms);
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory listing OpenCL devices");
        }
        entries = grown;
        if (clGetDeviceIDs (platforms [p], CL_DEVICE_TYPE_ALL, nd, devices, NULL) != CL_SUCCESS)
            nd = 0;
        char pname [128];
        s_platform_str (platforms [p], CL_PLATFORM_NAME, pname, sizeof pname);
        for (cl_uint d = 0; d < nd; d++) {
            s_entry_t *e = &entries [count++];
            e->platform = platforms [p];
            e->device = devices [d];
            e->p = p;
            e->d = d;
            e->type = 0;
            clGetDeviceInfo (devices [d], CL_DEVICE_TYPE, sizeof e->type, &e->type, NULL);
            char dname [128];
            s_device_str (devices [d], CL_DEVICE_NAME, dname, sizeof dname);
            snprintf (e->label, sizeof e->label, "%s / %s", pname, dname);
        }
        free (devices);
    }
    free (platforms);
    *entries_p = entries;
    *count_p = count;
    return 0;
}

//  Parses "P:D" into two indexes; false for anything else.
static bool
s_parse_index (const char *selector, unsigned *p, unsigned *d)
{
    const char *s = selector;
    if (!isdigit ((unsigned char) *s))
        return false;
    char *end;
    unsigned long pv = strtoul (s, &end, 10);
    if (*end != ':' || !isdigit ((unsigned char) end [1]))
        return false;
    unsigned long dv = strtoul (end + 1, &end, 10);
    if (*end != 0 || pv > 0xffff || dv > 0xffff)
        return false;
    *p = (unsigned) pv;
    *d = (unsigned) dv;
    return true;
}

//  Case-insensitive substring test.
static bool
s_contains_nocase (const char *haystack, const char *needle)
{
    size_t nlen = strlen (needle);
    for (const char *h = haystack; *h; h++) {
        size_t i = 0;
        while (i < nlen && h [i]
           &&  tolower ((unsigned char) h [i]) == tolower ((unsigned char) needle [i]))
            i++;
        if (i == nlen)
            return true;
    }
    return nlen == 0;
}

//  Sets ERR to RXQ_E_NODEVICE saying what does exist.
static int
s_no_device (cmn_err_t *err, const char *selector, const s_entry_t *entries,
             size_t count, cl_uint platforms)
{
    if (platforms == 0)
        return cmn_err_set (err, RXQ_E_NODEVICE,
                            "no OpenCL platform found (no ICD is installed, or none "
                            "loads); installing pocl-opencl-icd gives a CPU device");
    if (count == 0)
        return cmn_err_set (err, RXQ_E_NODEVICE,
                            "%u OpenCL platform(s) found but no device on any; check "
                            "the driver, or install pocl-opencl-icd for a CPU device",
                            (unsigned) platforms);
    char list [200] = "";
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof list - 1; i++) {
        int n = snprintf (list + used, sizeof list - used, "%s%u:%u %s (%s)",
                          i ? "; " : "", entries [i].p, entries [i].d,
                          entries [i].label, s_type_name (entries [i].type));
        if (n < 0)
            break;
        used += (size_t) n;
    }
    return cmn_err_set (err, RXQ_E_NODEVICE,
                        "no OpenCL device matches '%s'; found: %s", selector, list);
}

static void
s_fill_info (wrk_device_t *self)
{
    wrk_device_info_t *info = &self->info;
    cl_device_id dev = self->device;
    s_platform_str (self->platform, CL_PLATFORM_NAME, info->platform, sizeof info->platform);
    s_device_str (dev, CL_DEVICE_NAME, info->name, sizeof info->name);
    s_device_str (dev, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    s_device_str (dev, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
    s_device_str (dev, CL_DEVICE_VERSION, info->version, sizeof info->version);
    s_device_str (dev, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c, sizeof info->opencl_c);
    cl_device_type type = 0;
    cl_uint cu = 0, mhz = 0;
    cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
    size_t wg = 0;
    clGetDeviceInfo (dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo (dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo (dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof mhz, &mhz, NULL);
    clGetDeviceInfo (dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo (dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    clGetDeviceInfo (dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    clGetDeviceInfo (dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    snprintf (info->type, sizeof info->type, "%s", s_type_name (type));
    info->compute_units = cu;
    info->max_clock_mhz = mhz;
    info->global_mem = gmem;
    info->local_mem = lmem;
    info->max_alloc = maxalloc;
    info->max_wg = wg;
    info->fp16 = s_has_extension (dev, "cl_khr_fp16");
    info->fp64 = s_has_extension (dev, "cl_khr_fp64");
    cl_bool little = CL_TRUE;
    clGetDeviceInfo (dev, CL_DEVICE_ENDIAN_LITTLE, sizeof little, &little, NULL);
    info->little_endian = little == CL_TRUE;
}


//  --------------------------------------------------------------------------
//  Construction

wrk_device_t *
wrk_device_new (const char *selector, const char *cache_dir, cmn_err_t *err)
{
    s_entry_t *entries;
    size_t count;
    cl_uint platforms;
    if (s_enumerate (&entries, &count, &platforms, err))
        return NULL;

    const s_entry_t *pick = NULL;
    if (selector == NULL || *selector == 0) {
        for (size_t i = 0; i < count && !pick; i++)
            if (entries [i].type & CL_DEVICE_TYPE_GPU)
                pick = &entries [i];
        if (!pick && count > 0)
            pick = &entries [0];
    }
    else {
        unsigned p, d;
        bool by_index = s_parse_index (selector, &p, &d);
        for (size_t i = 0; i < count && !pick; i++)
            if (by_index ? (entries [i].p == p && entries [i].d == d)
                         : s_contains_nocase (entries [i].label, selector))
                pick = &entries [i];
    }
    if (!pick) {
        s_no_device (err, selector ? selector : "", entries, count, platforms);
        free (entries);
        return NULL;
    }

    wrk_device_t *self = calloc (1, sizeof *self);
    if (!self) {
        free (entries);
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory opening an OpenCL device");
        return NULL;
    }
    self->platform = pick->platform;
    self->device = pick->device;
    self->i8_dot = -1;
    free (entries);
    s_fill_info (self);

    cl_context_properties props [] = {
        CL_CONTEXT_PLATFORM, (cl_context_properties) self->platform, 0
    };
    cl_int rc;
    self->context = clCreateContext (props, 1, &self->device, NULL, NULL, &rc);
    if (!self->context) {
        wrk_device_cl_error (err, "clCreateContext", rc);
        wrk_device_destroy (&self);
        return NULL;
    }
    self->queue = clCreateCommandQueue (self->context, self->device,
                                        CL_QUEUE_PROFILING_ENABLE, &rc);
    if (!self->queue) {
        wrk_device_cl_error (err, "clCreateCommandQueue", rc);
        wrk_device_destroy (&self);
        return NULL;
    }
    if (cache_dir && *cache_dir) {
        //  The cache only saves compile time: a directory we cannot make
        //  costs a warning, not the device.
        if (mkdir (cache_dir, 0755) != 0 && errno != EEXIST)
            cmn_log_warn ("program cache disabled: cannot create %s: %s",
                          cache_dir, strerror (errno));
        else
        if (!(self->cache_dir = strdup (cache_dir))) {
            cmn_err_set (err, RXQ_E_NOMEM, "out of memory opening an OpenCL device");
            wrk_device_destroy (&self);
            return NULL;
        }
    }
    cmn_log_debug ("device %s / %s (%s), driver %s", self->info.platform,
                   self->info.name, self->info.type, self->info.driver);
    return self;
}

void
wrk_device_destroy (wrk_device_t **self_p)
{
    assert (self_p);
    wrk_device_t *self = *self_p;
    if (!self)
        return;
    while (self->programs) {
        s_program_t *next = self->programs->next;
        clReleaseProgram (self->programs->program);
        free (self->programs->name);
        free (self->programs->options);
        free (self->programs);
        self->programs = next;
    }
    if (self->queue)
        clReleaseCommandQueue (self->queue);
    if (self->context)
        clReleaseContext (self->context);
    free (self->cache_dir);
    free (self);
    *self_p = NULL;
}

const wrk_device_info_t *
wrk_device_info (wrk_device_t *self)
{
    assert (self);
    return &self->info;
}

cl_context
wrk_device_context (wrk_device_t *self)
{
    assert (self);
    return self->context;
}

cl_command_queue
wrk_device_queue (wrk_device_t *self)
{
    assert (self);
    return self->queue;
}

cl_device_id
wrk_device_id (wrk_device_t *self)
{
    assert (self);
    return self->device;
}

const wrk_device_stats_t *
wrk_device_stats (wrk_device_t *self)
{
    assert (self);
    return &self->stats;
}

int *
wrk_device_i8_dot_slot (wrk_device_t *self)
{
    assert (self);
    return &self->i8_dot;
}


//  --------------------------------------------------------------------------
//  Program cache

#define S_FNV_OFFSET 0xcbf29ce484222325ULL
#define S_FNV_PRIME  0x100000001b3ULL

static uint64_t
s_fnv (uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p [i];
        h *= S_FNV_PRIME;
    }
    return h;
}

//  Hashes a length-prefixed field, so ("ab","c") and ("a","bc") differ.
static uint64_t
s_fnv_field (uint64_t h, const char *text)
{
    uint64_t len = strlen (text);
    h = s_fnv (h, &len, sizeof len);
    return s_fnv (h, text, (size_t) len);
}

static uint64_t
s_cache_key (wrk_device_t *self, const char *hdr, const char *src, const char *options)
{
    uint64_t format = S_CACHE_FORMAT;
    uint64_t h = s_fnv (S_FNV_OFFSET, &format, sizeof format);
    h = s_fnv_field (h, self->info.platform);
    h = s_fnv_field (h, self->info.name);
    h = s_fnv_field (h, self->info.driver);
    h = s_fnv_field (h, hdr);
    h = s_fnv_field (h, src);
    return s_fnv_field (h, options);
}

//  Writes the cache path for NAME and KEY into PATH; false if it does not fit.
static bool
s_cache_path (wrk_device_t *self, const char *name, uint64_t key, char *path, size_t size)
{
    //  Source names are file names, but keep the cache file name to a safe
    //  alphabet whatever they hold.
    char safe [64];
    size_t i = 0;
    for (; name [i] && i < sizeof safe - 1; i++)
        safe [i] = (isalnum ((unsigned char) name [i]) || name [i] == '.'
                    || name [i] == '_' || name [i] == '-') ? name [i] : '_';
    safe [i] = 0;
    int n = snprintf (path, size, "%s/%s-%016llx.clbin", self->cache_dir, safe,
                      (unsigned long long) key);
    return n > 0 && (size_t) n < size;
}

//  Reads a cache file and checks its header; returns the payload (caller
//  frees) and its size, or NULL when absent or unusable (*rejected is set
//  when a file was there but unusable).
static unsigned char *
s_cache_read (const char *path, uint64_t key, size_t *size_p, bool *rejected)
{
    *rejected = false;
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    struct stat st;
    if (fstat (fileno (f), &st) == 0 && st.st_size >= S_CACHE_HEADER
    &&  (uint64_t) st.st_size <= S_CACHE_MAX_BYTES
    &&  (buf = malloc ((size_t) st.st_size)) != NULL
    &&  fread (buf, 1, (size_t) st.st_size, f) == (size_t) st.st_size) {
        uint64_t fkey, fsize, fhash;
        memcpy (&fkey, buf + 8, 8);
        memcpy (&fsize, buf + 16, 8);
        memcpy (&fhash, buf + 24, 8);
        size_t payload = (size_t) st.st_size - S_CACHE_HEADER;
        if (memcmp (buf, S_CACHE_MAGIC, 8) == 0 && fkey == key && fsize == payload
        &&  payload > 0
        &&  s_fnv (S_FNV_OFFSET, buf + S_CACHE_HEADER, payload) == fhash) {
            memmove (buf, buf + S_CACHE_HEADER, payload);
            *size_p = payload;
            fclose (f);
            return buf;
        }
    }
    free (buf);
    fclose (f);
    *rejected = true;
    cmn_log_warn ("program cache: ignoring unusable file %s", path);
    return NULL;
}

//  Writes the built binary of PROGRAM to PATH, atomically: a temporary file
//  in the same directory, then rename, so a reader never sees half a file
//  and two workers sharing a directory never mix their writes.
static bool
s_cache_write (wrk_device_t *self, cl_program program, const char *path, uint64_t key)
{
    size_t size = 0;
    if (clGetProgramInfo (program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL)
        != CL_SUCCESS || size == 0 || size > S_CACHE_MAX_BYTES - S_CACHE_HEADER)
        return false;
    unsigned char *bin = malloc (size);
    if (!bin)
        return false;
    char tmp [4200];
    if (clGetProgramInfo (program, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS
    ||  snprintf (tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int) sizeof tmp) {
        free (bin);
        return false;
    }
    //  mkstemp rather than a pid suffix: two devices of one model in one
    //  process share a key, and so a path.
    int fd = mkstemp (tmp);
    FILE *f = fd >= 0 ? fdopen (fd, "wb") : NULL;
    if (!f) {
        cmn_log_warn ("program cache: cannot create a file in %s: %s", self->cache_dir,
                      strerror (errno));
        if (fd >= 0) {
            close (fd);
            unlink (tmp);
        }
        free (bin);
        return false;
    }
    unsigned char hdr [S_CACHE_HEADER];
    uint64_t fsize = size, fhash = s_fnv (S_FNV_OFFSET, bin, size);
    memcpy (hdr, S_CACHE_MAGIC, 8);
    memcpy (hdr + 8, &key, 8);
    memcpy (hdr + 16, &fsize, 8);
    memcpy (hdr + 24, &fhash, 8);
    bool written = fwrite (hdr, 1, sizeof hdr, f) == sizeof hdr
                && fwrite (bin, 1, size, f) == size;
    bool ok = fclose (f) == 0 && written && rename (tmp, path) == 0;
    if (!ok) {
        cmn_log_warn ("program cache: cannot write %s: %s", path, strerror (errno));
        unlink (tmp);
    }
    free (bin);
    if (ok)
        self->stats.cache_writes++;
    return ok;
}

//  Collapses whitespace runs of the build log into single spaces, so the
//  start of the log fits on the one line of an error message.
static void
s_squash (char *text)
{
    char *out = text;
    const char *in = text;
    while (isspace ((unsigned char) *in))
        in++;
    bool space = false;
    for (; *in; in++) {
        if (isspace ((unsigned char) *in))
            space = true;
        else {
            if (space && out != text)
                *out++ = ' ';
            space = false;
            *out++ = *in;
        }
    }
    *out = 0;
}

//  Returns the build log of PROGRAM (caller frees), or NULL.
static char *
s_build_log (wrk_device_t *self, cl_program program)
{
    size_t len = 0;
    if (clGetProgramBuildInfo (program, self->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len)
        != CL_SUCCESS)
        return NULL;
    char *log = malloc (len + 1);
    if (!log)
        return NULL;
    if (clGetProgramBuildInfo (program, self->device, CL_PROGRAM_BUILD_LOG, len, log, NULL)
        != CL_SUCCESS)
        len = 0;
    log [len] = 0;
    return log;
}

//  Loads the cached binary at PATH and builds it; NULL on any failure (the
//  caller falls back to source).
static cl_program
s_program_from_cache (wrk_device_t *self, const char *path, uint64_t key, const char *options)
{
    size_t size = 0;
    bool rejected;
    unsigned char *bin = s_cache_read (path, key, &size, &rejected);
    if (!bin) {
        if (rejected)
            self->stats.cache_rejects++;
        return NULL;
    }
    cl_int status = CL_SUCCESS, rc;
    const unsigned char *bins [1] = { bin };
    cl_program program = clCreateProgramWithBinary (self->context, 1, &self->device,
                                                    &size, bins, &status, &rc);
    free (bin);
    if (program && rc == CL_SUCCESS && status == CL_SUCCESS) {
        rc = clBuildProgram (program, 1, &self->device, options, NULL, NULL);
        if (rc == CL_SUCCESS) {
            self->stats.cache_hits++;
            return program;
        }
    }
    //  A driver update that kept the version string, or a file from another
    //  device: rebuilding from source rewrites it.
    cmn_log_warn ("program cache: driver refused %s (%s), rebuilding", path,
                  cmn_cl_strerror (rc != CL_SUCCESS ? rc : status));
    if (program)
        clReleaseProgram (program);
    self->stats.cache_rejects++;
    return NULL;
}

static cl_program
s_program_from_source (wrk_device_t *self, const char *name, const char *hdr,
                       const char *src, const char *options, cmn_err_t *err)
{
    const char *strings [2] = { hdr, src };
    cl_int rc;
    cl_program program = clCreateProgramWithSource (self->context, 2, strings, NULL, &rc);
    if (!program) {
        wrk_device_cl_error (err, "clCreateProgramWithSource", rc);
        return NULL;
    }
    rc = clBuildProgram (program, 1, &self->device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        char *log = s_build_log (self, program);
        if (log) {
            //  The full log is for the kernel developer; line numbers in it
            //  count the prepended header's lines first.
            int lines = 0;
            for (const char *c = hdr; *c; c++)
                lines += *c == '\n';
            cmn_log_warn ("build of %s (%s) failed; line numbers include the %d lines "
                          "of cmn_quant_blocks.h:\n%s", name, options, lines, log);
            s_squash (log);
        }
        cmn_err_set (err, rc == CL_BUILD_PROGRAM_FAILURE ? RXQ_E_OPENCL_BUILD : RXQ_E_OPENCL,
                     "%s: build failed (%s): %.*s", name, cmn_cl_strerror (rc),
                     S_BUILD_LOG_CHARS, log && *log ? log : "(no build log)");
        free (log);
        clReleaseProgram (program);
        return NULL;
    }
    self->stats.builds++;
    return program;
}

cl_program
wrk_device_program (wrk_device_t *self, const char *name, const char *options,
                    cmn_err_t *err)
{
    assert (self);
    assert (name);
    if (!options)
        options = "";
    //  The kernels are written to OpenCL C 1.2; without -cl-std a 2.x/3.0
    //  compiler may pick another dialect.
    const char *std = strstr (options, "-cl-std=") ? "" : "-cl-std=CL1.2";
    size_t olen = strlen (std) + 1 + strlen (options) + 1;
    char *full = malloc (olen);
    if (!full) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory building %s", name);
        return NULL;
    }
    snprintf (full, olen, "%s%s%s", std, *std && *options ? " " : "", options);

    for (s_program_t *p = self->programs; p; p = p->next)
        if (strcmp (p->name, name) == 0 && strcmp (p->options, full) == 0) {
            free (full);
            return p->program;
        }

    cl_program program = NULL;
    char *hdr = NULL;
    char *src = rxq_kernels_load (name, NULL);
    s_program_t *entry = NULL;
    if (!src) {
        cmn_err_set (err, RXQ_E_NOTFOUND, "no kernel source '%s' (embedded, or in "
                     "RXQ_KERNEL_DIR when set)", name);
        goto done;
    }
    size_t hlen = 0;
    hdr = rxq_kernels_load ("cmn_quant_blocks.h", &hlen);
    if (!hdr) {
        cmn_err_set (err, RXQ_E_NOTFOUND, "no kernel source 'cmn_quant_blocks.h'");
        goto done;
    }
    //  The header and the kernel are concatenated by the compiler: make sure
    //  the header's last line ends before the kernel's first begins.
    if (hlen > 0 && hdr [hlen - 1] != '\n') {
        char *grown = realloc (hdr, hlen + 2);
        if (!grown) {
            cmn_err_set (err, RXQ_E_NOMEM, "out of memory building %s", name);
            goto done;
        }
        hdr = grown;
        hdr [hlen] = '\n';
        hdr [hlen + 1] = 0;
    }

    char path [4096];
    uint64_t key = 0;
    bool cached = false;
    if (self->cache_dir) {
        key = s_cache_key (self, hdr, src, full);
        cached = s_cache_path (self, name, key, path, sizeof path);
    }
    if (cached)
        program = s_program_from_cache (self, path, key, full);
    if (!program) {
        program = s_program_from_source (self, name, hdr, src, full, err);
        if (program && cached)
            s_cache_write (self, program, path, key);
    }
    if (!program)
        goto done;

    entry = calloc (1, sizeof *entry);
    if (!entry || !(entry->name = strdup (name))) {
        free (entry);
        entry = NULL;
        clReleaseProgram (program);
        program = NULL;
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory building %s", name);
        goto done;
    }
    entry->options = full;
    full = NULL;
    entry->program = program;
    entry->next = self->programs;
    self->programs = entry;

done:
    free (full);
    free (src);
    free (hdr);
    return program;
}


//  --------------------------------------------------------------------------
//  Description, listing, events

void
wrk_device_pack_info (wrk_device_t *self, msgpack_packer *pk)
{
    assert (self);
    const wrk_device_info_t *info = &self->info;
    msgpack_pack_map (pk, 15);
    cmn_pack_kv_str (pk, "platform", info->platform);
    cmn_pack_kv_str (pk, "name", info->name);
    cmn_pack_kv_str (pk, "vendor", info->vendor);
    cmn_pack_kv_str (pk, "driver", info->driver);
    cmn_pack_kv_str (pk, "version", info->version);
    cmn_pack_kv_str (pk, "opencl_c", info->opencl_c);
    cmn_pack_kv_str (pk, "type", info->type);
    cmn_pack_kv_uint (pk, "compute_units", info->compute_units);
    cmn_pack_kv_uint (pk, "global_mem", info->global_mem);
    cmn_pack_kv_uint (pk, "local_mem", info->local_mem);
    cmn_pack_kv_uint (pk, "max_alloc", info->max_alloc);
    cmn_pack_kv_uint (pk, "max_clock_mhz", info->max_clock_mhz);
    cmn_pack_kv_uint (pk, "max_wg", info->max_wg);
    cmn_pack_kv_bool (pk, "fp16", info->fp16);
    cmn_pack_kv_bool (pk, "fp64", info->fp64);
}

int
wrk_device_list (FILE *out)
{
    s_entry_t *entries;
    size_t count;
    cl_uint platforms;
    cmn_err_t err = { 0 };
    if (s_enumerate (&entries, &count, &platforms, &err)) {
        fprintf (out, "%s\n", err.msg);
        return 0;
    }
    if (count == 0) {
        s_no_device (&err, "", entries, count, platforms);
        fprintf (out, "%s\n", err.msg);
    }
    for (size_t i = 0; i < count; i++)
        fprintf (out, "%u:%u %s (%s)\n", entries [i].p, entries [i].d, entries [i].label,
                 s_type_name (entries [i].type));
    free (entries);
    return (int) count;
}

uint64_t
wrk_device_event_ns (cl_event event)
{
    cl_ulong start = 0, end = 0;
    if (clGetEventProfilingInfo (event, CL_PROFILING_COMMAND_START, sizeof start, &start,
                                 NULL) != CL_SUCCESS
    ||  clGetEventProfilingInfo (event, CL_PROFILING_COMMAND_END, sizeof end, &end,
                                 NULL) != CL_SUCCESS
    ||  end < start)
        return 0;
    return end - start;
}
