/*
 * sha1.cpp -- SHA-1 through libcrypto's EVP one-shot digest.
 */

#include "sha1.hpp"

#include <openssl/evp.h>

namespace pushq {

bool sha1(unsigned char out[20], const void *p, size_t n) noexcept
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  md_len = 0;

    if (EVP_Digest(p, n, md, &md_len, EVP_sha1(), nullptr) != 1
        || md_len != 20)
    {
        return false;
    }
    for (unsigned i = 0; i < 20; i++) {
        out[i] = md[i];
    }
    return true;
}

} // namespace pushq
