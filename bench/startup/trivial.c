/* trivial.c - the smallest dynamically linked C program: its start-up is all the loader's and libc's. */
int main(void) { return 0; }
