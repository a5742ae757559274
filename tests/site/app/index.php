<?php echo 'app index';
