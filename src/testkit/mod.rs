//! Test kit: throwaway servers. (Being written.)
