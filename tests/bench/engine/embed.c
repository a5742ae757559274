/*
 * The smallest program on Debian's libphp8.2-embed: runs one script with its arguments, no
 * php.ini (as `php -n`), so that engine-ab.sh can time the engine inside libphp8.2.so against
 * the same engine inside the php executable.
 */
#include <sapi/embed/php_embed.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		return 2;
	}
	php_embed_module.php_ini_ignore = 1;
	PHP_EMBED_START_BLOCK(argc - 1, argv + 1)
	zend_file_handle file;
	zend_stream_init_filename(&file, argv[1]);
	php_execute_script(&file);
	PHP_EMBED_END_BLOCK()
	return 0;
}
