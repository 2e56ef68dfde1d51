<?php

use App\Http\Controllers\NoteController;
use Illuminate\Support\Facades\Route;

Route::get('/', [NoteController::class, 'home'])->name('home');
Route::post('/notes', [NoteController::class, 'store'])->name('notes.store');
Route::get('/hello/{name}', [NoteController::class, 'hello'])->name('hello');
